"""`dvc plots show` renders the pipeline's plots (history.tsv curves, confusion matrices and other PNGs)
into HTML that a real browser draws: headless Chromium screenshots the page, and the screenshot
must not be blank. The vega charts load vega from a CDN, so offline only the images draw; the test
checks both are in the page and that the images alone make a non-blank screenshot."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from dvc_helpers import copy_built, dvc, golden

pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.browser]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1400,2000"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def plots_html(tmp_path_factory, mirror):
    repo = copy_built(golden(tmp_path_factory, mirror), tmp_path_factory.mktemp("plots") / "repo")
    out = repo.parent / "plots"
    dvc(repo, "plots", "show", "-o", str(out))
    return out / "index.html"


def test_plots_html_has_curves_and_images(plots_html):
    html = plots_html.read_text()
    assert "history.tsv" in html, "no training curve in the plots page"
    assert "vega" in html.lower()
    imgs = html.count("<img")
    assert imgs >= 1, "no PNG plot (confusion matrix, curves) in the plots page"
    for src in [s.split('"')[1] for s in html.split("<img")[1:]]:
        if not src.startswith("data:"):
            assert (plots_html.parent / src).is_file(), f"image {src} referenced but not written"


def test_chromium_renders_a_non_blank_page(plots_html, tmp_path):
    from PIL import Image, ImageStat

    shot = tmp_path / "plots.png"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", plots_html.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {p.returncode}):\n{p.stderr[-2000:]}"
    img = Image.open(shot).convert("L")
    assert img.size == (1400, 2000)
    stddev = ImageStat.Stat(img).stddev[0]
    assert stddev > 5.0, f"screenshot is blank (pixel stddev {stddev:.2f})"
