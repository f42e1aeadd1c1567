"""Small predictions files for the store tests: four images, six classes, some abstentions."""

from __future__ import annotations

import numpy as np

from selection.store.predictions_writer import PredictionWriter

IDS = ["a01", "a02", "b07", "c11"]
C = 6


def maps_for(seed: int, ids=IDS, shapes=None):
    rng = np.random.default_rng(seed)
    out = []
    for k, _ in enumerate(ids):
        h, w = shapes[k] if shapes else (5, 8)
        m = rng.integers(0, C, (h, w)).astype(np.uint8)
        m[rng.random((h, w)) < 0.2] = 255
        out.append(m)
    return out


def write(uri, cid, maps, ids=IDS, num_classes=C):
    with PredictionWriter(uri, cid, num_classes, ids) as w:
        for i, m in zip(ids, maps, strict=True):
            w.write(i, m)
