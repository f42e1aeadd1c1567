"""The selection dashboard: content, escaping, atomic writes, and a real headless-Chromium render."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hiast.config import load_config
from ray_jobs.dashboard import CENTRE_BOUND_SENTENCE, render_dashboard, write_dashboard

CLASSES = ["road", "sidewalk", "building", "pole", "sign", "vegetation", "sky", "person", "car"]
HOSTILE_NOTE = '<script>alert("x")</script> & "quotes"'


def make_inputs() -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """A sweep over the synthscape config: 11 candidates, one failed, one degenerate, labels known."""
    cfg = load_config(None)
    defaults = cfg.parameters()
    rows: list[dict[str, Any]] = []

    def add(sweep: str, **change: float) -> None:
        params = {**defaults, **change}
        rows.append({"candidate_id": f"c{len(rows):02d}", "sweep": sweep, **params})

    add("alpha,gamma,lambda_i,k")  # the default belongs to every sweep
    for a in (0.1, 0.3, 0.7, 0.9):
        add("alpha", alpha=a)
    for g in (2.0, 16.0):
        add("gamma", gamma=g)
    for li in (0.3, 3.0):
        add("lambda_i", lambda_i=li)
    for k in (1, 5):
        add("k", k=k)
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    n = len(df)
    df["f_miou"] = [0.81, 0.78, 0.84, 0.80, 0.52, 0.811, 0.809, 0.79, 0.80, 0.805, np.nan]
    df["true_miou"] = [0.42, 0.38, 0.45, 0.41, 0.20, 0.42, 0.41, 0.40, 0.41, 0.415, np.nan]
    df["status"] = ["ok"] * n
    df.loc[4, "status"] = "degenerate"  # alpha=0.9 collapsed
    df.loc[10, "status"] = "failed"  # k=5 crashed
    df["error"] = [None] * (n - 1) + ["RayTaskError: CUDA out of memory"]
    for c in CLASSES:
        df[f"iou_{c}"] = np.clip(rng.normal(0.7, 0.15, n), 0, 1)
    agree = np.clip(0.85 + rng.normal(0, 0.04, (n, n)), 0, 1)
    agree = (agree + agree.T) / 2
    np.fill_diagonal(agree, 1.0)
    agree[4, :] = agree[:, 4] = 0.55
    agree[4, 4] = 1.0
    for j, cid in enumerate(df["candidate_id"]):
        df[f"agree_{cid}"] = agree[:, j]
    # The failed candidate predicted nothing: no IoU, no agreement in either direction.
    df.loc[10, [c for c in df.columns if c.startswith(("iou_", "agree_"))]] = np.nan
    df["agree_c10"] = np.nan
    df["mean_confidence"] = rng.uniform(0.8, 0.95, n)
    df["neg_entropy"] = -rng.uniform(0.1, 0.5, n)
    df["rescale_consistency"] = rng.uniform(0.7, 0.9, n)
    df["source_miou"] = rng.uniform(0.5, 0.7, n)
    df["seed_agreement"] = rng.uniform(0.8, 0.9, n)
    df["elapsed_s"] = rng.uniform(100, 200, n)  # metadata, not a score
    choice = {
        "parameters": {**defaults, "alpha": 0.3},
        "f_miou": 0.84,
        "mode": "sweep",
        "per_sweep": {
            "alpha": {"value": 0.3, "f_miou": 0.84, "window": [0.1, 0.5]},
            "gamma": {"value": 8.0, "f_miou": 0.81},
            "lambda_i": {"value": 1.0, "f_miou": 0.81},
            "k": {"value": 3, "f_miou": 0.81},
        },
        "centre_bound": ["gamma"],
        "degenerate": ["c04"],
        "notes": ["candidate c10 failed and was left out of the vote", HOSTILE_NOTE],
    }
    return df, choice, cfg


# --------------------------------------------------------------------------------------------
# Content (no browser needed)


def test_page_content_and_offline() -> None:
    df, choice, cfg = make_inputs()
    page = render_dashboard(df, choice, cfg)
    for cid in df["candidate_id"]:
        assert cid in page
    assert CENTRE_BOUND_SENTENCE in page
    # One banner, inside the gamma card, and only there.
    gamma_card = page.split('id="sweep-gamma"')[1].split('<div class="card sweep"')[0]
    assert "centre-bound" in gamma_card
    alpha_card = page.split('id="sweep-alpha"')[1].split('<div class="card sweep"')[0]
    assert "centre-bound" not in alpha_card
    assert 'data-pick="alpha"' in alpha_card and "alpha = 0.3" in alpha_card
    assert "true mIoU" in alpha_card  # second series present because true_miou is non-null
    assert "RayTaskError: CUDA out of memory" in page
    assert "elapsed_s" not in page.split("Label-free scores")[1].split("</section>")[0]
    for score in ("mean_confidence", "neg_entropy", "rescale_consistency", "source_miou", "seed_agreement"):
        assert score in page
    for c in CLASSES:
        assert f">{c}<" in page
    assert "PROVISIONAL" not in page
    # Offline: no scripts, no remote resources, user text escaped.
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page


def test_provisional_banner_counts_and_sparse_table() -> None:
    df, _, cfg = make_inputs()
    # Halfway through: only some rows exist, no choice yet, no optional columns at all.
    part = df.loc[:3, ["candidate_id", "alpha", "f_miou"]]
    page = render_dashboard(part, None, cfg, provisional=True)
    # 11 candidates implied by the synthscape config's sweep (default + 4 + 2 + 2 + 2).
    assert "PROVISIONAL — 4 of 11 candidates finished" in page
    assert "No choice yet" in page
    page = render_dashboard(part, None, cfg.model_dump(), provisional=True, total_candidates=20)
    assert "PROVISIONAL — 4 of 20 candidates finished" in page


def test_grid_mode_and_separate_agreement_frame() -> None:
    df, _, cfg = make_inputs()
    grid = pd.DataFrame(
        {
            "candidate_id": ["g0", "g1", "g2", "g3"],
            "alpha": [0.3, 0.3, 0.7, 0.7],
            "gamma": [2.0, 8.0, 2.0, 8.0],
            "f_miou": [0.7, 0.9, 0.6, 0.65],
            "sweep": ["grid"] * 4,
        }
    )
    agreement = pd.DataFrame(np.eye(4) * 0.2 + 0.8, index=grid["candidate_id"], columns=grid["candidate_id"])
    choice = {"parameters": {"alpha": 0.3, "gamma": 8.0}, "f_miou": 0.9, "mode": "grid"}
    page = render_dashboard(grid, choice, None, agreement=agreement)
    assert page.count('class="pick-ring"') == 2  # g1 in the alpha chart and in the gamma chart
    assert ">chosen<" in page
    assert "No pairwise agreement" not in page and "0.800" in page


def test_write_is_atomic_and_accepts_uris(tmp_path: Path) -> None:
    df, choice, cfg = make_inputs()
    target = tmp_path / "out" / "dashboard.html"
    write_dashboard(str(target), df, choice, cfg)
    first = target.read_text(encoding="utf-8")
    write_dashboard(target.as_uri(), df.iloc[:5], choice, cfg, provisional=True)
    assert target.read_text(encoding="utf-8") != first
    assert [p.name for p in target.parent.iterdir()] == ["dashboard.html"]  # no temp left behind


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df, choice, cfg = make_inputs()
    target = tmp_path / "dashboard.html"
    write_dashboard(str(target), df, choice, cfg)
    before = target.read_bytes()

    import ray_jobs.dashboard as dash

    real = dash._filesystem

    class FailingMove:
        """The real local file system, except that the final rename fails (disk full, EIO…)."""

        def __init__(self, fs: Any) -> None:
            self._fs = fs
            self.type_name = fs.type_name

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fs, name)

        def move(self, src: str, dst: str) -> None:
            raise OSError("disk full")

    def failing(uri: str) -> tuple[Any, str]:
        fs, path = real(uri)
        return FailingMove(fs), path

    monkeypatch.setattr(dash, "_filesystem", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dashboard(str(target), df.iloc[:2], choice, cfg)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["dashboard.html"]


# --------------------------------------------------------------------------------------------
# Real browser render


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


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    exe = _chromium()
    df, choice, cfg = make_inputs()
    page_path = tmp_path / "dashboard.html"
    write_dashboard(str(page_path), df, choice, cfg)
    html_text = page_path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html_text)

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
    for cid in df["candidate_id"]:
        assert cid in dom
    assert "<script>alert" not in dom  # the hostile note stayed text

    png = tmp_path / "shot.png"
    subprocess.run(
        [*_chromium_cmd(exe, tmp_path / "profile-png"), f"--screenshot={png}", url],
        capture_output=True,
        timeout=90,
        env=env,
        check=True,
    )
    img = Image.open(png).convert("L")
    assert img.size[0] >= 1000
    pixels = np.asarray(img, dtype=float)
    assert pixels.std() > 10, "screenshot is blank"
    # Dark pixels (text, axes) must be a visible share of the page, not a stray line.
    assert (pixels < 100).mean() > 0.005
