"""Centre-bias diagnostic, trimmed vote, label-free scores and the audit maths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from selection_families import (
    clear_winner_family,
    degenerate_pair_family,
    monotone_family,
    true_miou,
    write_family,
)

from selection import (
    SCORES,
    Line,
    MeanMapAccumulator,
    ScoreValues,
    SelectionError,
    TrimRule,
    build_candidates,
    entropy_map,
    find_degenerate,
    kendall_tau_b,
    max_prob_map,
    mean_confidence,
    mean_entropy,
    rescale_accumulator,
    rescale_consistency,
    run_selection,
    seed_agreement,
    source_val_miou,
    spearman,
    windows_for_line,
)
from selection.audit import AuditScore, audit_group
from selection.scores import direction
from selection.trimming import explain_trim

# -- centre bias ----------------------------------------------------------------------------------


def _line(m):
    return Line("p", "p", "p", tuple(f"c{i}" for i in range(m)), tuple(float(i) for i in range(m)))


@pytest.mark.parametrize(
    "m, expected",
    [
        (4, []),
        (5, [(3, 0), (3, 1), (3, 2)]),  # windows of 3 and of m-2 coincide
        (6, [(3, 0), (3, 1), (3, 2), (3, 3)]),  # m-2 = 4 is even: no centre, skipped
        (7, [(3, s) for s in range(5)] + [(5, s) for s in range(3)]),
    ],
)
def test_windows_of_three_and_of_m_minus_two(m, expected):
    ws = windows_for_line(_line(m))
    assert [(w.size, w.start) for w in ws] == expected
    for w in ws:
        assert w.centre_id == f"c{w.start + w.size // 2}"


def test_monotone_family_is_centre_bound(tmp_path):
    cands, uris, ids, maps, truth = monotone_family(tmp_path)
    res = run_selection(cands, uris, ids, 2, true_miou=true_miou(maps, truth, 2))
    assert res.choice["centre_bound"] == ["alpha"]
    assert res.windows["picked_centre"].all() and len(res.windows) == 3
    assert res.choice["per_sweep"]["alpha"]["centre_bound"] is True
    assert res.table["centre_bound"].all()
    assert any("did not discriminate" in n for n in res.notes)
    assert "centre_bound" in res.summary_markdown()
    # the vote picks the grid's centre although the truth is candidate 0: regret equals the centre's
    audit = res.audit.set_index("score")
    assert audit.loc["f_miou", "regret"] == pytest.approx(audit.loc["centre", "regret"])
    assert audit.loc["f_miou", "regret"] > 0


def test_monotone_family_of_seven_uses_both_window_sizes(tmp_path):
    cands, uris, ids, _, _ = monotone_family(tmp_path, values=[0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8])
    res = run_selection(cands, uris, ids, 2)
    assert sorted(set(res.windows["size"])) == [3, 5] and len(res.windows) == 8
    assert res.choice["centre_bound"] == ["alpha"]


def test_clear_off_centre_winner_is_not_centre_bound(tmp_path):
    cands, uris, ids, maps, truth = clear_winner_family(tmp_path, winner_index=1)
    res = run_selection(cands, uris, ids, 4)
    assert res.choice["centre_bound"] == []
    assert res.choice["per_sweep"]["alpha"]["centre_bound"] is False
    assert not res.windows["picked_centre"].all()
    assert res.choice["per_sweep"]["alpha"]["candidate_id"] == "alpha=0.3"  # the clean one


def test_grid_lines_are_diagnosed_per_parameter(tmp_path):
    # 5 alphas x 2 gammas; maps drift with alpha only: every alpha line is centre-bound
    cands = build_candidates(
        {"alpha": 0.5, "gamma": 8.0}, {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9], "gamma": [4.0, 8.0]}, "grid"
    )
    ids = ["i0", "i1"]
    rng = np.random.default_rng(0)
    maps = {}
    for c in cands:
        col = 10 + int(round(c.params["alpha"] * 15))
        base = np.ones((6, 40), np.uint8)
        base[:, :col] = 0
        maps[c.id] = [
            np.where(rng.random(base.shape) < 0.02 * c.params["gamma"] / 8, 1 - base, base).astype(np.uint8)
            for _ in ids
        ]
    uris = write_family(tmp_path, cands, maps, ids, 2)
    res = run_selection(cands, uris, ids, 2)
    assert res.choice["mode"] == "grid" and res.choice["centre_bound"] == ["alpha"]
    assert set(res.windows["line"]) == {"alpha|gamma=4", "alpha|gamma=8"}
    assert "gamma" not in res.choice["centre_bias"]  # 2 values: nothing to assess


# -- trimming -------------------------------------------------------------------------------------

TABLE8 = {  # paper Table 8, F-mIoU per sweep: ordinary spread, nothing degenerate
    "alpha": [85.4, 92.4, 95.2, 83.5, 71.3],
    "gamma": [88.4, 93.9, 96.2, 91.8, 86.0],
    "lambda_i": [84.5, 92.9, 96.6, 91.5, 87.7],
    "lambda_cst": [95.8, 96.5, 94.8, 91.4, 83.6],
    "k": [91.1, 93.9, 89.6],
}


@pytest.mark.parametrize("sweep", sorted(TABLE8))
def test_paper_table8_flags_nothing(sweep):
    scores = {f"v{i}": s / 100 for i, s in enumerate(TABLE8[sweep])}
    assert find_degenerate(scores) == []


def test_trim_rule_known_answers():
    assert find_degenerate({"a": 0.92, "b": 0.73, "c": 0.73, "d": 0.08, "e": 0.08}) == ["d", "e"]
    split = explain_trim({"a": 0.92, "b": 0.73, "c": 0.73, "d": 0.08, "e": 0.08})
    assert split.gap == pytest.approx(0.65) and split.threshold == pytest.approx(0.2)
    assert find_degenerate({"a": 0.9, "b": 0.88, "c": 0.2}) == ["c"]
    assert find_degenerate({"a": 0.9, "b": 0.2}) == []  # too few to tell who is odd
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.85}) == []  # 0.05 < min_gap
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.85}, TrimRule(min_gap=0.01)) == ["d"]
    assert find_degenerate({"a": 0.9, "b": float("nan"), "c": 0.88, "d": 0.1}) == ["d"]
    # at most a minority: with half the group low, nobody is "the outlier"
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.1, "d": 0.1}) == []


def test_two_correlated_degenerates_are_trimmed_and_the_pick_restored(tmp_path):
    cands, uris, ids, maps, truth, roles = degenerate_pair_family(tmp_path)
    tm = true_miou(maps, truth, 5)
    res = run_selection(cands, uris, ids, 5, true_miou=tm)
    by_role = {r: cid for cid, r in roles.items()}
    info = res.choice["per_sweep"]["alpha"]
    assert sorted(res.choice["degenerate"]) == sorted([by_role["D1"], by_role["D2"]])
    assert info["untrimmed_pick"] == by_role["B"]  # the paper's vote is led astray ...
    assert info["candidate_id"] == by_role["A"]  # ... the trimmed vote finds the best
    assert max(tm, key=tm.get) == by_role["A"]
    t = res.table.set_index("candidate_id")
    assert t.loc[by_role["D1"], "degenerate"] and not t.loc[by_role["A"], "degenerate"]
    assert t.loc[by_role["A"], "f_miou_trimmed"] > t.loc[by_role["A"], "f_miou"]
    audit = res.audit.set_index("score")
    assert audit.loc["f_miou_trimmed", "regret"] == 0 < audit.loc["f_miou", "regret"]
    assert any("degenerate" in n for n in res.notes) and any("changed the pick" in n for n in res.notes)
    # windows holding a degenerate are not assessed for centre bias
    assert res.windows.set_index("window")["assessed"].tolist() == [False, True, False]
    # trimming off: the paper's pick stands, nobody is flagged
    plain = run_selection(cands, uris, ids, 5, trim_outliers=False)
    assert plain.choice["per_sweep"]["alpha"]["candidate_id"] == by_role["B"]
    assert plain.choice["degenerate"] == [] and plain.choice["score_used"] == "f_miou"


# -- label-free scores ----------------------------------------------------------------------------


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


# -- audit ----------------------------------------------------------------------------------------

X = [0.1, 0.4, 0.4, 0.3, 0.9, 0.2]
Y = [0.50, 0.55, 0.60, 0.52, 0.58, 0.40]


def test_rank_correlations_match_scipy():
    assert spearman(X, Y) == pytest.approx(scipy.stats.spearmanr(X, Y).statistic)
    assert kendall_tau_b(X, Y) == pytest.approx(scipy.stats.kendalltau(X, Y).statistic)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3])) and np.isnan(kendall_tau_b([1.0], [2.0]))


def test_audit_known_answer():
    ids = ["v1", "v2", "v3", "v4", "v5"]  # a sweep in value order; v3 is its centre
    truth = {"v1": 0.535, "v2": 0.559, "v3": 0.563, "v4": 0.565, "v5": 0.562}
    fm = {"v1": 0.854, "v2": 0.924, "v3": 0.952, "v4": 0.835, "v5": 0.713}  # paper Table 8, alpha
    ent = {"v1": 0.30, "v2": 0.20, "v3": 0.25, "v4": 0.10, "v5": 0.40}  # lower is better
    rows = {
        r["score"]: r
        for r in audit_group(
            "alpha",
            ids,
            truth,
            {"f_miou": AuditScore(fm, True), "mean_entropy": AuditScore(ent, False)},
            "v3",
        )
    }
    assert rows["f_miou"]["pick"] == "v3" and rows["f_miou"]["best"] == "v4"
    assert rows["f_miou"]["regret"] == pytest.approx(0.002)
    assert rows["f_miou"]["spearman"] == pytest.approx(
        scipy.stats.spearmanr(list(fm.values()), list(truth.values())).statistic
    )
    assert rows["mean_entropy"]["pick"] == "v4" and rows["mean_entropy"]["regret"] == 0
    # oriented: entropy is negated before correlating
    assert rows["mean_entropy"]["kendall"] == pytest.approx(
        scipy.stats.kendalltau([-v for v in ent.values()], list(truth.values())).statistic
    )
    assert rows["centre"]["pick"] == "v3" and rows["centre"]["regret"] == pytest.approx(0.002)
    assert rows["random"]["regret"] == pytest.approx(0.565 - np.mean(list(truth.values())))
    # an ineligible best-scored candidate is skipped
    r = audit_group("alpha", ids, truth, {"f": AuditScore(fm, True, eligible=["v1", "v2"])}, None)[0]
    assert r["pick"] == "v2"
