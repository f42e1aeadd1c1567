"""The dashboard rendered for real in headless Chromium: DOM structure and a screenshot."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import FAILED_ID, job_outputs

from selection.report import CENTRE_BOUND_SENTENCE, write_dashboard

SCORE_RGB, TRUTH_RGB = (0x1F, 0x5F, 0xA8), (0xD9, 0x67, 0x0B)  # dashboard.css --score, --truth


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("chromium is not installed on CI (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI runs this test")
    return exe


def _chromium_cmd(exe: str, profile: Path) -> list[str]:
    return [
        exe,
        "--headless",
        "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1200,2000",
    ]


def _share_near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> float:
    return float((np.abs(pixels - np.array(rgb)).max(axis=-1) < tol).mean())


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    exe = _chromium()
    o = job_outputs(tmp_path)
    page_path = tmp_path / "dashboard.html"
    write_dashboard(str(page_path), o.table, o.choice, o.config, class_names=o.class_names, sweeps=o.sweeps)
    assert not re.search(r"https?://", page_path.read_text(encoding="utf-8"))

    env = {**os.environ, "HOME": str(tmp_path)}  # keep Chromium's caches out of the real home
    url = page_path.as_uri()
    dom = subprocess.run(
        [*_chromium_cmd(exe, tmp_path / "profile-dom"), "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=True,
    ).stdout
    assert 'class="pick-marker"' in dom and 'data-pick="alpha"' in dom
    assert CENTRE_BOUND_SENTENCE in dom
    for cid in o.table["candidate_id"]:
        assert html.escape(cid) in dom
    assert "<script>alert" not in dom  # the hostile note stayed text
    # The browser parsed one chart per swept parameter, each with its points.
    assert dom.count('<svg class="chart"') == 4
    assert dom.count('class="pick-ring"') == 4
    assert dom.count('class="failed-point"') == 1 and FAILED_ID in dom
    # The rule, its confidence, and one ranking table per sweep.
    assert 'class="rule-line"' in dom and 'class="banner confidence low"' in dom
    assert dom.count('class="card ranking"') == 4 and dom.count('class="data ranks"') == 4

    png = tmp_path / "shot.png"
    subprocess.run(
        [*_chromium_cmd(exe, tmp_path / "profile-png"), f"--screenshot={png}", url],
        capture_output=True,
        timeout=90,
        env=env,
        check=True,
    )
    img = Image.open(png).convert("RGB")
    assert img.size[0] >= 1000
    pixels = np.asarray(img, dtype=float)
    grey = pixels.mean(axis=-1)
    assert grey.std() > 10, "screenshot is blank"
    # Dark pixels (text, axes) must be a visible share of the page, not a stray line.
    assert (grey < 100).mean() > 0.005
    # The charts took their colours from the inlined stylesheet: both series are on screen.
    assert _share_near(pixels, SCORE_RGB) > 0.0005
    assert _share_near(pixels, TRUTH_RGB) > 0.0002
