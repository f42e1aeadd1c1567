"""Constructed candidate families with known behaviour, written to a predictions store."""

from __future__ import annotations

import numpy as np

from selection import build_candidates
from selection.store.predictions_writer import PredictionWriter

DEFAULTS = {"alpha": 0.5, "gamma": 8.0, "k": 3}
ALPHAS = [0.1, 0.3, 0.5, 0.7, 0.9]


def write_family(tmp_path, candidates, maps_by_id, ids, num_classes, tag=""):
    """maps_by_id: candidate id -> list of maps (one per image). Returns id -> uri."""
    uris = {}
    for c in candidates:
        uri = str(tmp_path / f"{tag}{c.digest}.parquet")
        with PredictionWriter(uri, c.id, num_classes, ids) as w:
            for i, m in zip(ids, maps_by_id[c.id], strict=True):
                w.write(i, m)
        uris[c.id] = uri
    return uris


def boundary_map(col: int, h: int = 6, w: int = 40) -> np.ndarray:
    m = np.ones((h, w), np.uint8)
    m[:, :col] = 0
    return m


def monotone_family(tmp_path, values=ALPHAS, n_images=3):
    """Candidate t draws a class boundary at column 10 + 3t: a smooth drift along the sweep.

    The truth is candidate 0's boundary (true mIoU falls monotonically along the sweep), yet any
    window's vote puts the boundary at the median, i.e. the window's centre candidate: the
    centre-bias diagnostic must fire.
    """
    cands = build_candidates({**DEFAULTS, "alpha": 0.5}, {"alpha": list(values)}, "sweep")
    order = sorted(cands, key=lambda c: c.params["alpha"])
    ids = [f"img{i}" for i in range(n_images)]
    maps = {c.id: [boundary_map(10 + 3 * t) for _ in ids] for t, c in enumerate(order)}
    truth = [boundary_map(10) for _ in ids]
    return cands, write_family(tmp_path, cands, maps, ids, 2), ids, maps, truth


def noisy(truth: np.ndarray, rng, rate: float, num_classes: int, towards: int | None = None) -> np.ndarray:
    m = truth.copy()
    flip = rng.random(m.shape) < rate
    m[flip] = towards if towards is not None else rng.integers(0, num_classes, int(flip.sum()))
    return m


def clear_winner_family(tmp_path, winner_index=1, n_images=4, seed=0):
    """One clean candidate (index ``winner_index`` of 5, off-centre), the others independently noisy."""
    rng = np.random.default_rng(seed)
    cands = build_candidates(DEFAULTS, {"alpha": ALPHAS}, "sweep")
    order = sorted(cands, key=lambda c: c.params["alpha"])
    ids = [f"img{i}" for i in range(n_images)]
    truth = [rng.integers(0, 4, (12, 16)).astype(np.uint8) for _ in ids]
    maps = {}
    for t, c in enumerate(order):
        maps[c.id] = [t_.copy() if t == winner_index else noisy(t_, rng, 0.3, 4) for t_ in truth]
    return cands, write_family(tmp_path, cands, maps, ids, 4), ids, maps, truth


def degenerate_pair_family(tmp_path, n_images=6, seed=1):
    """Five candidates: A (best, 10% random errors), B (15% errors, all towards class 0), C (15%
    random errors), and two identical collapsed candidates predicting class 0 everywhere.

    With the collapsed pair voting, B's errors agree with their bloc and become the fusion, while
    A's errors only cause ties: the paper's vote picks B. Without them the fusion is near the
    truth and A wins.
    """
    rng = np.random.default_rng(seed)
    cands = build_candidates(DEFAULTS, {"alpha": ALPHAS}, "sweep")
    order = sorted(cands, key=lambda c: c.params["alpha"])  # 0.1 0.3 0.5 0.7 0.9
    roles = dict(zip([c.id for c in order], ["D1", "A", "B", "C", "D2"], strict=True))
    ids = [f"img{i}" for i in range(n_images)]
    truth = [rng.integers(0, 5, (24, 32)).astype(np.uint8) for _ in ids]
    maps: dict[str, list[np.ndarray]] = {}
    for cid, role in roles.items():
        if role in ("D1", "D2"):
            maps[cid] = [np.zeros_like(t) for t in truth]
        elif role == "A":
            maps[cid] = [noisy(t, rng, 0.10, 5) for t in truth]
        elif role == "B":
            maps[cid] = [noisy(t, rng, 0.15, 5, towards=0) for t in truth]
        else:
            maps[cid] = [noisy(t, rng, 0.15, 5) for t in truth]
    return cands, write_family(tmp_path, cands, maps, ids, 5), ids, maps, truth, roles


def true_miou(maps_by_id, truth, num_classes):
    """Plain mIoU of each candidate against the truth, summed over images."""
    out = {}
    for cid, maps in maps_by_id.items():
        inter = np.zeros(num_classes)
        union = np.zeros(num_classes)
        for m, t in zip(maps, truth, strict=True):
            for c in range(num_classes):
                inter[c] += np.sum((m == c) & (t == c))
                union[c] += np.sum((m == c) | (t == c))
        out[cid] = float(np.mean([i / u for i, u in zip(inter, union, strict=True) if u > 0]))
    return out


SWEEP_CLASSES = 4


def sweep_setup(tmp_path, replicates=False, n_images=5, seed=0):
    """alpha and gamma sweeps around the defaults; error rate grows away from alpha 0.4 / gamma 8.

    With ``replicates``, every candidate has a second, independently noisy predictions file.
    Returns candidates, uris (id -> file, or [file, replicate file]), image ids, true mIoU.
    """
    c = SWEEP_CLASSES
    rng = np.random.default_rng(seed)
    cands = build_candidates(DEFAULTS, {"alpha": [0.1, 0.3, 0.7], "gamma": [2.0, 16.0]}, "sweep")
    ids = [f"img{i}" for i in range(n_images)]
    truth = [rng.integers(0, c, (10, 12)).astype(np.uint8) for _ in ids]
    rate = {
        k.id: 0.1 + 0.1 * abs(k.params["alpha"] - 0.4) + 0.02 * abs(np.log2(k.params["gamma"] / 8))
        for k in cands
    }
    maps = {k.id: [noisy(t, rng, rate[k.id], c) for t in truth] for k in cands}
    uris = write_family(tmp_path, cands, maps, ids, c)
    if replicates:
        maps2 = {k.id: [noisy(t, rng, rate[k.id], c) for t in truth] for k in cands}
        uris2 = write_family(tmp_path, cands, maps2, ids, c, tag="r1-")
        uris = {cid: [uris[cid], uris2[cid]] for cid in uris}
    return cands, uris, ids, true_miou(maps, truth, c)
