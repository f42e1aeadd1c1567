"""Evidence files for test families: softmax near each candidate's own label maps, source-val, MixVal."""

from __future__ import annotations

import numpy as np

from selection.validators import mixval_counts
from selection.validators.evidence import EvidenceSettings, EvidenceWriter, mixval_pairs

SETTINGS = EvidenceSettings(n_pix=12, source_images=2)
SOURCE_IDS = ["s0", "s1", "s2"]


def write_evidence(tmp_path, candidates, maps_by_id, ids, num_classes, seed=0, settings=SETTINGS, tag=""):
    """One evidence file per candidate: its target softmax peaks at its own labels (sharper for
    candidates later in ``candidates``), random source-val pixels, MixVal counts of random mixes, and
    source_val_miou 0.1 * k. Returns id -> uri."""
    rng = np.random.default_rng(seed)
    c = num_classes
    uris = {}
    for k, cand in enumerate(candidates):
        own = maps_by_id[cand.id]
        uris[cand.id] = str(tmp_path / f"{tag}ev_{k}.npz")
        with EvidenceWriter(
            uris[cand.id], cand.id, c, ids, settings=settings, source_ids=settings.source_subset(SOURCE_IDS)
        ) as w:
            for i, m in zip(ids, own, strict=True):
                px = settings.sampler()(i, m.shape)
                logits = rng.normal(size=(settings.n_pix, c)) + (1 + k) * np.eye(c)[m.reshape(-1)[px]]
                p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
                w.add_target(i, m.shape, p)
            for i in settings.source_subset(SOURCE_IDS):
                p = rng.dirichlet(np.ones(c) * 0.3, settings.n_pix)
                w.add_source(i, own[0].shape, p, rng.integers(0, c, settings.n_pix))
            by = dict(zip(ids, own, strict=True))
            for a, b in mixval_pairs(ids, settings.mixval_seed):
                other = by[b] if by[b].shape == by[a].shape else by[a]
                mix = np.where(rng.random(by[a].shape) < 0.3, other, by[a]).astype(np.uint8)
                w.add_mixval(a, b, mixval_counts(by[a], other, mix, c))
            w.set_scalar("source_val_miou", 0.1 * k)
    return uris
