"""The selection dashboard: content, escaping, atomic writes, and a real headless-Chromium render."""

from __future__ import annotations

import html
import math
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
FAILED_ID = "k=5"
COLLAPSED_ID = "lambda_i=3"


def real_inputs(tmp: Path) -> tuple[pd.DataFrame, dict[str, Any], Any, list[dict[str, Any]]]:
    """A real selection (selection.run_selection) over the synthscape config's 11 candidates.

    Predictions are built so that the alpha sweep is centre-bound (each candidate's error is a
    shift proportional to alpha, so neighbours agree most and every window picks its centre),
    one candidate collapses to "road" (degenerate) and one fails (it never reaches the vote and
    comes in as ``ray_jobs.select`` reports it). Target labels exist, so true mIoU is shown.
    """
    from hiast.metrics import confusion_matrix, mean_iou
    from selection.candidates import build_candidates
    from selection.run import run_selection
    from selection.store import PredictionWriter

    cfg = load_config(None)
    cands = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    rng = np.random.default_rng(0)
    image_ids = [f"img{i}" for i in range(4)]
    classes = np.array(cfg.data.eval_classes)
    grid = np.add.outer(np.arange(32) // 8, np.arange(64) // 8)
    truth = [classes[(grid + i) % len(classes)].astype(np.uint8) for i in range(4)]
    finished = [c for c in cands if c.id != FAILED_ID]
    uris, true_miou = {}, {}
    for c in finished:
        p = c.params
        noise = 0.03 + 0.04 * abs(math.log2(p["gamma"] / 8)) + 0.03 * abs(p["k"] - 3)
        preds = []
        for t in truth:
            pred = np.roll(t, int(round(p["alpha"] * 20)), axis=1)
            if c.id == COLLAPSED_ID:
                pred[rng.random(pred.shape) < 0.9] = 0
            flip = rng.random(pred.shape) < noise
            pred[flip] = rng.choice(classes, int(flip.sum()))
            preds.append(pred)
        uris[c.id] = str(tmp / f"{c.id}.parquet")
        with PredictionWriter(uris[c.id], c.id, cfg.data.num_classes, image_ids) as w:
            for i, pred in zip(image_ids, preds, strict=True):
                w.write(i, pred)
        cm = sum(confusion_matrix(pr, t, cfg.data.num_classes) for pr, t in zip(preds, truth, strict=True))
        true_miou[c.id] = mean_iou(cm, classes.tolist())
    result = run_selection(
        finished,
        uris,
        image_ids,
        cfg.data.num_classes,
        extra_scores={"mean_confidence": {c.id: float(rng.uniform(0.8, 0.95)) for c in finished}},
        true_miou=true_miou,
    )
    choice = {**result.choice, "notes": [*result.choice["notes"], HOSTILE_NOTE]}
    lost = next(c for c in cands if c.id == FAILED_ID)
    failed = [
        {
            "candidate_id": lost.id,
            "replicate": 0,
            "params": dict(lost.params),
            "sweeps": list(lost.sweeps),
            "status": "failed",
            "error": "RayTaskError: CUDA out of memory",
        }
    ]
    return result.table, choice, cfg, failed


def brief_inputs() -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """The simpler table layout (sweep strings, status, iou_<class>, agree_<id>), hand-built."""
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


def _card(page: str, param: str) -> str:
    return page.split(f'id="sweep-{param}"')[1].split('<div class="card sweep"')[0].split("</section>")[0]


def test_real_selection_output(tmp_path: Path) -> None:
    table, choice, cfg, failed = real_inputs(tmp_path)
    # The scenario is what it claims to be, so the assertions below mean something.
    assert choice["centre_bound"] == ["alpha"]
    assert COLLAPSED_ID in choice["degenerate"]
    page = render_dashboard(table, choice, cfg, failed=failed)
    for cid in [*table["candidate_id"], FAILED_ID]:
        assert html.escape(cid) in page
    # The centre-bias banner sits in the alpha card only.
    assert CENTRE_BOUND_SENTENCE in _card(page, "alpha")
    for p in ("gamma", "lambda_i", "k"):
        assert "centre-bound" not in _card(page, p)
    # Every sweep marks its own pick, by candidate id, and rings exactly one point.
    for g, info in choice["per_sweep"].items():
        card = _card(page, g)
        assert f'data-pick="{g}"' in card
        assert f"({html.escape(info['candidate_id'])}, f_miou_trimmed" in card
        assert card.count('class="pick-ring"') == 1
        assert "true mIoU (audit)" in card
    # The failed candidate is listed with its error and plotted as a cross in its sweep.
    assert "RayTaskError: CUDA out of memory" in page
    assert 'class="failed-point"' in _card(page, "k")
    # Degenerate candidate listed with where it was flagged; trimming rule shown.
    excluded = page.split("<h2>Excluded candidates</h2>")[1].split("</section>")[0]
    assert f"<b>{COLLAPSED_ID}</b>" in excluded and html.escape(choice["trim_rule"]) in excluded
    # Per-class IoU under class names, restricted to the config's eval classes.
    per_class = page.split("Per-class IoU against the fusion")[1].split("</section>")[0]
    assert [m for m in re.findall(r'<th class="vert">([^<]+)</th>', per_class)] == [
        "road", "sidewalk", "building", "pole", "traffic sign", "vegetation", "sky", "person", "car"
    ]  # fmt: skip
    agreement = page.split("Agreement between candidates")[1].split("</section>")[0]
    assert agreement.count('<th class="cid">') == len(table)
    scores = page.split("Label-free scores side by side")[1].split("</section>")[0]
    for name in ("f_miou_trimmed", "mean_confidence", "true_miou"):
        assert f"<td>{name}" in scores
    assert "<td>replicates" not in scores and "agreement__" not in scores
    # Each score picks within each sweep: one column per sweep, and the trimmed F-mIoU (the
    # vote's own score) agrees with the vote wherever its maximum is unique (2-candidate votes tie).
    picks = scores.split('<table class="data picks">')[1].split("</table>")[0]
    assert re.findall(r"<th>([^<]+)</th>", picks)[2:6] == ["alpha", "gamma", "lambda_i", "k"]
    trimmed_row = next(r for r in picks.split("<tr>") if r.startswith("<td>f_miou_trimmed<"))
    cells = re.findall(r"<td( class=\"\w+\")?[^>]*>", trimmed_row)[2:6]
    assert cells and all(c in (' class="agree"', ' class="tie"') for c in cells)
    assert ' class="agree"' in cells


def test_page_content_and_offline() -> None:
    df, choice, cfg = brief_inputs()
    page = render_dashboard(df, choice, cfg)
    for cid in df["candidate_id"]:
        assert cid in page
    assert CENTRE_BOUND_SENTENCE in page
    # One banner, inside the gamma card, and only there.
    gamma_card = _card(page, "gamma")
    assert "centre-bound" in gamma_card
    alpha_card = _card(page, "alpha")
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
    df, _, cfg = brief_inputs()
    # Halfway through: only some rows exist, no choice yet, no optional columns at all.
    part = df.loc[:3, ["candidate_id", "alpha", "f_miou"]]
    page = render_dashboard(part, None, cfg, provisional=True)
    # 11 candidates implied by the synthscape config's sweep (default + 4 + 2 + 2 + 2).
    assert "PROVISIONAL — 4 of 11 candidates finished" in page
    assert "No choice yet" in page
    page = render_dashboard(part, None, cfg.model_dump(), provisional=True, total_candidates=20)
    assert "PROVISIONAL — 4 of 20 candidates finished" in page


def test_empty_and_running_tables_render() -> None:
    cfg = load_config(None)
    assert "No choice yet" in render_dashboard(pd.DataFrame(), None, None)
    running = pd.DataFrame({"candidate_id": ["default", "alpha=0.1"], "status": ["running", "done"]})
    page = render_dashboard(running, None, cfg, provisional=True)
    assert "PROVISIONAL — 1 of 11 candidates finished" in page


def test_grid_mode_and_separate_agreement_frame() -> None:
    df, _, cfg = brief_inputs()
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
    df, choice, cfg = brief_inputs()
    target = tmp_path / "out" / "dashboard.html"
    write_dashboard(str(target), df, choice, cfg)
    first = target.read_text(encoding="utf-8")
    write_dashboard(target.as_uri(), df.iloc[:5], choice, cfg, provisional=True)
    assert target.read_text(encoding="utf-8") != first
    assert [p.name for p in target.parent.iterdir()] == ["dashboard.html"]  # no temp left behind


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df, choice, cfg = brief_inputs()
    target = tmp_path / "dashboard.html"
    write_dashboard(str(target), df, choice, cfg)
    before = target.read_bytes()

    import selection.filesystem as shared_fs

    real = shared_fs.resolve

    class FailingMove:
        """The real local file system, except that the final rename fails (disk full, EIO…)."""

        def __init__(self, fs: Any) -> None:
            self._fs = fs

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fs, name)

        def move(self, src: str, dst: str) -> None:
            raise OSError("disk full")

    def failing(uri: str) -> tuple[Any, str]:
        fs, path = real(uri)
        return FailingMove(fs), path

    monkeypatch.setattr(shared_fs, "resolve", failing)
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
    df, choice, cfg, failed = real_inputs(tmp_path)
    page_path = tmp_path / "dashboard.html"
    write_dashboard(str(page_path), df, choice, cfg, failed=failed)
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
    for cid in [*df["candidate_id"], FAILED_ID]:
        assert html.escape(cid) in dom
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
