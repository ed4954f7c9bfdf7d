#!/usr/bin/env bash
# Create .venv if absent and install dlpipe (editable) with its test extra. Idempotent.
# Needs only Python 3.11 and git. torch/torchvision are pinned (2.14.1 / 0.29.1) in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"dlpipe needs Python 3.11, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.dlpipe-installed
# Reinstall only when pyproject.toml changed since the last install (fast reruns).
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# DVC runs inside git; a fresh clone already is one.
git rev-parse --git-dir >/dev/null 2>&1 || { echo "setup: run inside the git clone of dlpipe" >&2; exit 1; }
echo "setup: ok ($(.venv/bin/python -c 'import torch, dvc.version as v; print("torch", torch.__version__, "| dvc", v.__version__)'))"
