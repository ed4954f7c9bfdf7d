"""`dvc plots diff` between two branches renders into HTML that a real browser draws: headless
Chromium screenshots the page (training curves from history.tsv, confusion matrices and other PNGs
of both revisions), and the screenshot must not be blank.

The vega charts load vega from a CDN, so offline only the PNGs draw; the test checks the charts'
specs are in the page and that the images alone make a non-blank screenshot."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from dvc_helpers import branches, dvc

pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.browser]
WIDTH, HEIGHT = 1400, 2000
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
                  "--virtual-time-budget=10000"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def plots_html(tmp_path_factory, mirror):
    _chromium()  # skip before building anything when there is no browser
    b = branches(tmp_path_factory, mirror)
    out = tmp_path_factory.mktemp("plots") / "diff"
    dvc(b.repo, "plots", "diff", *b.revs, "-o", str(out))
    return out / "index.html", b.revs


def test_plots_html_has_curves_and_images_of_both_revisions(plots_html):
    page, revs = plots_html
    html = page.read_text()
    assert "history.tsv" in html and "vega" in html.lower(), "no training curve in the plots page"
    imgs = [s.split('"')[1] for s in html.split("<img")[1:] if 'src="' in s]
    assert any("confusion" in s for s in imgs), f"no confusion matrix among {imgs}"
    for rev in revs:
        assert any(rev in s for s in imgs), f"no image of revision {rev} among {imgs}"
    for src in imgs:
        if not src.startswith("data:"):
            assert (page.parent / src).is_file(), f"image {src} referenced but not written"


def test_chromium_renders_a_non_blank_page(plots_html, tmp_path):
    from PIL import Image, ImageStat

    page, _ = plots_html
    shot = tmp_path / "plots.png"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", page.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {p.returncode}):\n{p.stderr[-2000:]}"
    img = Image.open(shot).convert("RGB")
    assert img.size == (WIDTH, HEIGHT)
    stddev = ImageStat.Stat(img.convert("L")).stddev[0]
    assert stddev > 5.0, f"screenshot is blank (pixel stddev {stddev:.2f})"
    # The PNGs really drew: a fair share of the page is non-white, in more than a handful of colours.
    small = img.resize((WIDTH // 4, HEIGHT // 4))
    px = list(small.getdata())
    inked = sum(1 for r, g_, b_ in px if min(r, g_, b_) < 230) / len(px)
    assert inked > 0.02, f"only {inked:.1%} of the screenshot is drawn on"
    assert len(set(px)) > 50, f"only {len(set(px))} colours in the screenshot"
