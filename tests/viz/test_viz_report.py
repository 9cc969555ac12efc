"""The run report: self-contained, every section, and rendered by a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from cnnlab.errors import DataError
from cnnlab.viz.report import SECTIONS, build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


@pytest.fixture(scope="module")
def report(tiny_run):
    return build_report(tiny_run)


def test_report_is_self_contained_with_every_section(report, tiny_run):
    assert report == tiny_run / "report.html"
    page = report.read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) >= 6  # curves (2), confusion, filters, features, >= 1 mistake
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(href|src)=\"(https?:)?//", page)  # nothing from the network
    assert "<table" in page and "features.0" in page  # the layer table
    assert (tiny_run / "filters.png").is_file() and (tiny_run / "features.png").is_file()


def test_the_end_of_run_hook_wrote_the_report(tiny_run):
    page = (tiny_run / "report-from-hook.html").read_text()
    assert all(f'<section id="{key}">' in page for key in SECTIONS)
    assert "lenet5 on digits: test top-1" in page


def test_report_of_something_that_is_not_a_run(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no best.pt or last.pt"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


_CHECK = """<script>
// after "load" every image has been fetched and decoded: a broken one has naturalWidth 0
window.addEventListener("load", () => {
  const images = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  const sections = [...document.querySelectorAll("section")].map(s => s.id);
  document.body.setAttribute("data-check", JSON.stringify({images, sections}));
});
</script></body>"""


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(
            "no Chromium on this machine: install Debian's `chromium` package "
            "(.ci/run installs it when it can)"
        )
    # A copy with a checking script: the browser decodes every image and lists the sections
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", _CHECK))
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]
    run = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    )
    m = re.search(r"data-check=\"([^\"]*)\"", run.stdout)
    assert m, f"the load handler did not run: {run.stdout[-300:]!r} {run.stderr[-500:]!r}"
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check["sections"] == list(SECTIONS)
    assert len(check["images"]) >= 6 and all(check["images"])
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--window-size=1100,1600", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
    )
    from torchvision.io import decode_png, read_file

    pixels = decode_png(read_file(str(shot))).float().numpy()
    assert pixels.shape[1:] == (1600, 1100)
    assert pixels.std() > 10  # not a blank page
    assert (pixels < 128).mean() > 0.01  # dark pixels: text and pictures were drawn
    assert np.unique(pixels.reshape(pixels.shape[0], -1), axis=1).shape[1] > 50  # many colours
