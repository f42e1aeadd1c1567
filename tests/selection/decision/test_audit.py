"""The audit maths: rank correlations (scipy.stats, NaN semantics kept), regret, references."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from selection import build_candidates
from selection.decision.audit import (
    AUDIT_COLUMNS,
    AuditScore,
    audit_group,
    audit_selection,
    centre_of_group,
    kendall_tau_b,
    spearman,
)
from selection.decision.rules import parse_rule
from selection.tables import GroupScores

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


def test_rank_correlations_hand_worked_and_undefined_cases():
    # x ties once (2, 2): 5 concordant pairs, 0 discordant, 1 tie in x -> 5 / sqrt(5 * 6)
    assert kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / np.sqrt(30))
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN is the answer here, not a warning
        for f in (spearman, kendall_tau_b):
            assert np.isnan(f([], []))
            assert np.isnan(f([0.3], [0.5]))
            assert np.isnan(f([0.2, 0.2, 0.2], [0.1, 0.5, 0.3]))
            assert np.isnan(f([0.1, 0.5, 0.3], [7, 7, 7]))
            assert f([0.1, 0.2], [0.5, 0.4]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="spearman: lengths differ"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="kendall: lengths differ"):
        kendall_tau_b([1, 2], [1])


def test_audit_selection_rows_and_the_grid_centre(tmp_path):
    cands = build_candidates({"alpha": 0.5, "k": 3}, {"alpha": [0.3, 0.5, 0.7], "k": [1, 3, 5]}, "grid")
    by_id = {c.id: c for c in cands}
    ids = [c.id for c in cands]
    assert centre_of_group("grid", ids, by_id) == "alpha=0.5,k=3"
    assert centre_of_group("alpha", ["a", "b", "c", "d"], by_id) == "b"  # lower middle
    f = {i: 0.5 + 0.01 * k for k, i in enumerate(ids)}
    ft = {**f, ids[-1]: float("nan")}  # the trimmed vote does not rank the degenerate candidate
    table = pd.DataFrame({"f_miou": f, "f_miou_trimmed": ft}).loc[ids]
    gs = GroupScores("grid", tuple(ids), f, f, {}, degenerate=(ids[-1],), pick=ids[-2], table=table)
    truth = {i: 0.4 + 0.01 * k for k, i in enumerate(ids)}
    rule = parse_rule({"rank_average": ["f_miou", "f_miou_trimmed"]})
    audit = audit_selection({"grid": gs}, cands, truth, {"conf": f}, {"conf": False}, rule)
    assert list(audit.columns) == AUDIT_COLUMNS
    assert audit["score"].tolist() == ["f_miou", "f_miou_trimmed", "rule", "conf", "centre", "random"]
    assert audit["kind"].tolist() == ["validator", "validator", "rule", "score", "reference", "reference"]
    rows = audit.set_index("score")
    assert rows.loc["f_miou", "pick"] == ids[-1] and rows.loc["f_miou_trimmed", "pick"] == ids[-2]
    assert rows.loc["f_miou", "top1"] and not rows.loc["f_miou_trimmed", "top1"]
    assert rows.loc["rule", "pick"] == rule.pick(table) == ids[-2]
    assert rows.loc["conf", "pick"] == ids[0] and rows.loc["conf", "spearman"] == pytest.approx(-1.0)


def test_audit_ties_go_to_the_default_as_the_rules_do():
    ids = ["v1", "v2", "v3"]
    truth = {"v1": 0.5, "v2": 0.4, "v3": 0.3}
    tied = {"v1": 0.9, "v2": 0.9, "v3": 0.1}
    first = audit_group("a", ids, truth, {"s": AuditScore(tied, True)}, None)[0]
    assert first["pick"] == "v1" and first["top1"]
    preferred = audit_group("a", ids, truth, {"s": AuditScore(tied, True)}, None, prefer="v2")[0]
    assert preferred["pick"] == "v2" and preferred["regret"] == pytest.approx(0.1) and not preferred["top1"]
    # prefer only breaks ties: it is not picked when it is not among the best
    assert audit_group("a", ids, truth, {"s": AuditScore(tied, True)}, None, prefer="v3")[0]["pick"] == "v1"
