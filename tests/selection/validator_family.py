"""A sweep family with predictions and evidence files, for the tests of the vote pass's validators
(shared by ``run/test_validator_table.py`` and ``decision/test_guard.py``)."""

from __future__ import annotations

import numpy as np
from evidence_files import write_evidence
from selection_families import noisy, write_family

from selection import build_candidates

C = 4
DEFAULTS = {"alpha": 0.5, "gamma": 8.0}


def family(tmp_path, n_images=5, seed=0, replicates=False):
    rng = np.random.default_rng(seed)
    cands = build_candidates(
        DEFAULTS, {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9], "gamma": [2.0, 8.0, 16.0]}, "sweep"
    )
    ids = [f"img{i}" for i in range(n_images)]
    truth = [rng.integers(0, C, (6, 8)).astype(np.uint8) for _ in ids]
    rate = {c.id: 0.1 + 0.3 * abs(c.params["alpha"] - 0.3) + 0.05 * (c.params["gamma"] != 8) for c in cands}
    maps = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
    preds = write_family(tmp_path, cands, maps, ids, C)
    evidence = write_evidence(tmp_path, cands, maps, ids, C, seed=seed)
    if replicates:
        maps2 = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
        reps = write_family(tmp_path, cands, maps2, ids, C, tag="r1-")
        preds = {cid: [preds[cid], reps[cid]] for cid in preds}
        return cands, preds, evidence, ids, maps, maps2
    return cands, preds, evidence, ids, maps
