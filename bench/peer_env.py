"""The peers' virtual environment (bench/.peers/venv): created and installed by the bench itself.

fastai is never a project dependency; it lives only here, pinned in bench/peers/requirements.txt,
with the same torch/torchvision/spaCy as the project so the comparison isolates dlpipe's code.
A stamp holding the requirements' sha256 makes reruns instant; a changed file reinstalls.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench.common import BENCH, RAW, BenchError

VENV = BENCH / ".peers" / "venv"
REQS = BENCH / "peers" / "requirements.txt"
PEER_PY = VENV / "bin" / "python"
_CHECK = ("import fastai, torch, spacy, psutil; "
          "assert fastai.__version__ == '2.8.12', fastai.__version__; "
          "print(fastai.__version__, torch.__version__, spacy.__version__)")


def _base_python() -> str:
    """The interpreter the project venv was made from (the peers get the same Python)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-20:])
        raise BenchError(f"bench: could not {what} (exit {rc}); peers are installed from {REQS} into "
                         f"{VENV}. Fix the install or delete {VENV.parent} and rerun.\n--- {log} (tail):\n{tail}")


def ensure_peers() -> Path:
    """Create/refresh the peers' venv when its requirements changed; return its python.

    Raises:
        BenchError: naming the failing step and quoting pip's output, if a peer cannot be installed.
    """
    digest = hashlib.sha256(REQS.read_bytes()).hexdigest()
    stamp = VENV / ".bench-installed"
    if stamp.is_file() and stamp.read_text().strip() == digest and PEER_PY.exists():
        return PEER_PY
    RAW.mkdir(parents=True, exist_ok=True)
    log = RAW / "peer_install.log"
    log.write_text("")
    print(f"bench: installing peers into {VENV} (first run: ~3 min; log {log})", flush=True)
    if not PEER_PY.exists():
        _run([_base_python(), "-m", "venv", str(VENV)], log, "create the peers' venv")
    _run([str(PEER_PY), "-m", "pip", "install", "-q", "-r", str(REQS)], log,
         "install the peers (fastai==2.8.12 with torch==2.14.1, torchvision==0.29.1)")
    _run([str(PEER_PY), "-c", _CHECK], log, "import the installed peers")
    stamp.write_text(digest + "\n")
    return PEER_PY


def peer_versions() -> str:
    """'fastai 2.8.12, torch 2.14.1, spacy 3.8.x' as installed in the peers' venv."""
    out = subprocess.run([str(PEER_PY), "-c", _CHECK], capture_output=True, text=True)
    if out.returncode != 0:
        return "unavailable"
    fa, to, sp = out.stdout.split()
    return f"fastai {fa}, torch {to}, spacy {sp}"
