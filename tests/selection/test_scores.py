"""Label-free scores beside F-mIoU: directions, streamed means, rescale consistency, seed agreement."""

from __future__ import annotations

import numpy as np
import pytest

from selection import (
    SCORES,
    MeanMapAccumulator,
    ScoreValues,
    SelectionError,
    entropy_map,
    max_prob_map,
    mean_confidence,
    mean_entropy,
    rescale_accumulator,
    rescale_consistency,
    seed_agreement,
    source_val_miou,
)
from selection.scores import direction


def test_score_directions_are_stated():
    assert mean_confidence.higher_is_better and not mean_entropy.higher_is_better
    assert rescale_consistency.higher_is_better and seed_agreement.higher_is_better
    assert source_val_miou.higher_is_better
    assert {k: v.higher_is_better for k, v in SCORES.items()} == {
        "f_miou": True,
        "f_miou_trimmed": True,
        "mean_confidence": True,
        "mean_entropy": False,
        "rescale_consistency": True,
        "source_val_miou": True,
        "seed_agreement": True,
    }
    assert direction("mean_entropy", {"a": 1.0}) is False
    assert direction("my_score", ScoreValues({"a": 1.0}, higher_is_better=False)) is False
    with pytest.raises(SelectionError, match="not a known score"):
        direction("my_score", {"a": 1.0})


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_confidence_and_entropy_stream_like_a_naive_mean(chunk):
    rng = np.random.default_rng(chunk)
    logits = [rng.normal(size=(4, 3, 5 + k)) for k in range(7)]
    probs = [np.exp(x) / np.exp(x).sum(0) for x in logits]
    conf_parts, ent_parts = [], []
    for i in range(0, len(probs), chunk):
        c, e = MeanMapAccumulator(), MeanMapAccumulator()
        for p in probs[i : i + chunk]:
            c.update(max_prob_map(p))
            e.update(entropy_map(p))
        conf_parts.append(c)
        ent_parts.append(e)
    conf, ent = conf_parts[0], ent_parts[0]
    for c, e in zip(conf_parts[1:], ent_parts[1:], strict=True):
        conf.merge(c)
        ent.merge(e)
    all_max = np.concatenate([p.max(0).ravel() for p in probs])
    all_ent = np.concatenate([(-(p * np.log(p)).sum(0)).ravel() for p in probs])
    assert mean_confidence(conf) == pytest.approx(all_max.mean())
    assert mean_entropy(ent) == pytest.approx(all_ent.mean())
    import torch

    assert float(entropy_map(torch.from_numpy(probs[0])).mean()) == pytest.approx(
        (-(probs[0] * np.log(probs[0])).sum(0)).mean()
    )


def test_mean_map_valid_mask_and_bad_values():
    acc = MeanMapAccumulator()
    acc.update(np.array([[1.0, 0.0], [0.5, 9.0]]), valid=np.array([[True, True], [True, False]]))
    assert acc.mean == pytest.approx(0.5)
    with pytest.raises(SelectionError, match="NaN"):
        acc.update(np.array([np.nan]))
    assert np.isnan(MeanMapAccumulator().mean)


def test_rescale_consistency_is_the_miou_between_the_two_maps():
    a = np.array([[0, 0, 1, 1, 2, 255]], np.uint8)
    b = np.array([[0, 1, 1, 1, 2, 2]], np.uint8)
    acc = rescale_accumulator(3)
    acc.update(np.stack([a, b]))
    # class0 1/2, class1 2/3, class2 1/2 -> 5/9
    assert rescale_consistency(acc) == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)


def test_seed_agreement_and_source_passthrough():
    m = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]])
    assert seed_agreement(m) == pytest.approx(0.7)
    assert np.isnan(seed_agreement(np.ones((1, 1))))
    assert source_val_miou(0.42) == 0.42
    with pytest.raises(SelectionError, match="fraction"):
        source_val_miou(42.0)
