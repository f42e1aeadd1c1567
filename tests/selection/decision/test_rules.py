"""Rules: parsing (every error names selection.rule), picks with directions, NaN and ties,
rank averages against scipy's ranks, two-stage drops at the boundary, and config feasibility."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from selection.decision.rules import (
    RankAverage,
    Single,
    TwoStage,
    all_picks,
    check_rule,
    parse_rule,
    rule_needs,
)
from selection.errors import SelectionError

NAN = math.nan


def _table(**cols) -> pd.DataFrame:
    ids = [f"c{k}" for k in range(len(next(iter(cols.values()))))]
    return pd.DataFrame(cols, index=pd.Index(ids, name="candidate_id"), dtype=float)


# ----------------------------------------------------------------------------------------------
# parsing


def test_parse_forms_and_round_trip():
    assert parse_rule("ensv") == Single("ensv")
    r = parse_rule({"rank_average": ["ensv", "atc", {"rank_average": ["snd", "im"]}]})
    assert isinstance(r, RankAverage) and r.requires == {"ensv", "atc", "snd", "im"}
    assert r.text == "rank_average(ensv, atc, rank_average(snd, im))"
    t = parse_rule(
        {"two_stage": {"drop": "f_miou", "fraction": 0.5, "pick": {"rank_average": ["atc", "snd"]}}}
    )
    assert isinstance(t, TwoStage) and t.fraction == 0.5
    assert t.text == "two_stage(drop=f_miou, fraction=0.5, pick=rank_average(atc, snd))"
    for rule in (r, t, Single("mean_entropy")):
        assert parse_rule(rule.to_config()) == rule
    assert parse_rule(t) is t


@pytest.mark.parametrize(
    "value,match",
    [
        ("xyz", r"selection.rule: unknown rule 'xyz'; a rule is a validator name \(f_miou, "),
        ("true_miou", "selection.rule: unknown rule 'true_miou'"),
        (3, "selection.rule: expected a validator name or a mapping"),
        ({"rank_average": ["ensv"], "two_stage": {}}, "selection.rule: expected .* one key"),
        ({"median": ["ensv"]}, "selection.rule: unknown rule kind 'median'"),
        ({"rank_average": "ensv"}, r"selection.rule.rank_average: expected a non-empty list"),
        ({"rank_average": []}, r"selection.rule.rank_average: expected a non-empty list"),
        ({"rank_average": ["ensv", "nope"]}, r"selection.rule.rank_average\[1\]: unknown rule 'nope'"),
        ({"rank_average": ["ensv", "ensv"]}, "lists a rule twice"),
        (
            {"two_stage": {"drop": "f_miou", "pick": "atc"}},
            "selection.rule.two_stage: expected a mapping with exactly",
        ),
        (
            {"two_stage": {"drop": "f_miou", "fraction": 1.0, "pick": "atc"}},
            r"two_stage.fraction: .* \[0, 1\)",
        ),
        ({"two_stage": {"drop": "f_miou", "fraction": True, "pick": "atc"}}, "two_stage.fraction"),
        (
            {"two_stage": {"drop": "f_miou", "fraction": 0.2, "pick": {"x": 1}}},
            "selection.rule.two_stage.pick: unknown",
        ),
    ],
)
def test_parse_errors_name_the_field(value, match):
    with pytest.raises(SelectionError, match=match):
        parse_rule(value)


# ----------------------------------------------------------------------------------------------
# single validators: direction, NaN, ties


def test_single_uses_the_direction():
    t = _table(f_miou=[0.5, 0.9, 0.7], mean_entropy=[0.3, 0.2, 0.1])
    assert Single("f_miou").pick(t) == "c1"
    assert Single("mean_entropy").pick(t) == "c2"  # lower is better


def test_nan_never_wins_and_all_nan_picks_nothing():
    assert Single("f_miou").pick(_table(f_miou=[NAN, 0.1, NAN])) == "c1"
    assert Single("mean_entropy").pick(_table(mean_entropy=[NAN, 5.0, NAN])) == "c1"
    assert Single("f_miou").pick(_table(f_miou=[NAN, NAN])) is None


def test_ties_go_to_prefer_else_the_first_in_order():
    t = _table(ensv=[0.2, 0.8, 0.8, 0.8])
    assert Single("ensv").pick(t) == "c1"
    assert Single("ensv").pick(t, prefer="c2") == "c2"
    assert Single("ensv").pick(t, prefer="c0") == "c1"  # not among the tied
    assert Single("ensv").pick(t.iloc[::-1]) == "c3"  # table order decides, not the id


def test_missing_column_and_bad_tables():
    with pytest.raises(SelectionError, match=r"lacks column\(s\) \['atc'\]"):
        Single("atc").pick(_table(ensv=[1.0, 2.0]))
    with pytest.raises(SelectionError, match="not unique"):
        Single("ensv").pick(pd.DataFrame({"ensv": [1.0, 2.0]}, index=["a", "a"]))
    with pytest.raises(SelectionError, match="DataFrame"):
        Single("ensv").pick({"ensv": [1.0]})


# ----------------------------------------------------------------------------------------------
# rank average


def _naive_rank_average(table, items):
    n = len(table)
    ranks = []
    for name, high in items:
        v = table[name].to_numpy()
        v = v if high else -v
        nan = np.isnan(v)
        r = np.empty(n)
        r[nan] = rankdata(np.zeros(nan.sum())) if nan.any() else []
        r[~nan] = rankdata(v[~nan]) + nan.sum()
        ranks.append(np.where(nan, (nan.sum() + 1) / 2, r))
    out = np.mean(ranks, axis=0)
    all_nan = np.all([np.isnan(table[name].to_numpy()) for name, _ in items], axis=0)
    return np.where(all_nan, np.nan, out)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_rank_average_against_scipy_ranks(n):
    rng = np.random.default_rng(n)
    t = _table(
        ensv=rng.integers(0, 4, n) / 4,  # ties
        mean_entropy=rng.random(n),
        atc=np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
    )
    rule = parse_rule({"rank_average": ["ensv", "mean_entropy", "atc"]})
    want = _naive_rank_average(t, [("ensv", True), ("mean_entropy", False), ("atc", True)])
    np.testing.assert_allclose(rule.scores(t).to_numpy(), want, equal_nan=True)


def test_rank_average_known_answer():
    t = _table(f_miou=[0.9, 0.8, 0.7], mean_entropy=[0.9, 0.1, 0.1], atc=[NAN, 0.5, 0.6])
    rule = parse_rule({"rank_average": ["f_miou", "mean_entropy", "atc"]})
    # f_miou ranks 3 2 1; entropy (low better) 1 2.5 2.5; atc NaN lowest: 1 2 3
    np.testing.assert_allclose(rule.scores(t), [5 / 3, 6.5 / 3, 6.5 / 3])
    assert rule.pick(t) == "c1" and rule.pick(t, prefer="c2") == "c2"


# ----------------------------------------------------------------------------------------------
# two stage


def test_two_stage_drops_the_bottom_and_picks_among_the_rest():
    t = _table(f_miou=[0.9, 0.8, 0.3, 0.2, 0.85], source_val_miou=[0.1, 0.2, 0.9, 0.8, 0.3])
    rule = parse_rule({"two_stage": {"drop": "f_miou", "fraction": 0.4, "pick": "source_val_miou"}})
    assert rule.kept(t) == ["c0", "c1", "c4"]  # k = 2 lowest by f_miou dropped
    assert rule.pick(t) == "c4"
    assert Single("source_val_miou").pick(t) == "c2"  # what the first stage prevents
    np.testing.assert_allclose(rule.scores(t), [0.1, 0.2, NAN, NAN, 0.3])


def test_two_stage_keeps_ties_at_the_boundary_and_nan_goes_first():
    t = _table(f_miou=[0.5, 0.5, 0.9, 0.9], ensv=[4.0, 3.0, 2.0, 1.0])
    keep_ties = parse_rule({"two_stage": {"drop": "f_miou", "fraction": 0.25, "pick": "ensv"}})
    assert keep_ties.kept(t) == ["c0", "c1", "c2", "c3"]  # c0 and c1 tie for last: both stay
    t2 = _table(f_miou=[NAN, 0.1, 0.9, NAN], ensv=[4.0, 3.0, 2.0, 1.0])
    half = parse_rule({"two_stage": {"drop": "f_miou", "fraction": 0.5, "pick": "ensv"}})
    assert half.kept(t2) == ["c1", "c2"] and half.pick(t2) == "c1"
    everyone_nan = _table(f_miou=[NAN, NAN, NAN], ensv=[1.0, 3.0, 2.0])
    assert half.kept(everyone_nan) == ["c0", "c1", "c2"]
    zero = parse_rule({"two_stage": {"drop": "f_miou", "fraction": 0, "pick": "ensv"}})
    assert zero.kept(t) == list(t.index)


def test_two_stage_inner_ranks_are_among_the_survivors():
    t = _table(f_miou=[0.1, 0.9, 0.8], ensv=[0.9, 0.2, 0.3], snd=[0.9, 0.3, 0.2])
    rule = parse_rule(
        {"two_stage": {"drop": "f_miou", "fraction": 0.34, "pick": {"rank_average": ["ensv", "snd"]}}}
    )
    np.testing.assert_allclose(rule.scores(t), [NAN, 1.5, 1.5])
    assert rule.pick(t) == "c1" and rule.pick(t, prefer="c2") == "c2"


# ----------------------------------------------------------------------------------------------
# feasibility and all picks


def test_needs_and_check_rule():
    assert rule_needs(parse_rule("atc")) == {"target_probs", "source_probs"}
    ok = check_rule({"rank_average": ["ensv", "seed_agreement"]}, replicates=2, has_source_val=False)
    assert ok.requires == {"ensv", "seed_agreement"}
    with pytest.raises(
        SelectionError,
        match=r"selection.rule .* uses seed_agreement, which needs "
        r"selection.replicates >= 2 .*selection.replicates is 1",
    ):
        check_rule({"rank_average": ["ensv", "seed_agreement"]}, replicates=1, has_source_val=True)
    with pytest.raises(
        SelectionError,
        match="uses atc, source_val_miou, which needs a labelled source validation "
        "split: data.source_val is not set",
    ):
        check_rule(
            {"two_stage": {"drop": "atc", "fraction": 0.5, "pick": "source_val_miou"}},
            replicates=3,
            has_source_val=False,
        )
    with pytest.raises(SelectionError, match="selection.rule: unknown rule"):
        check_rule("bogus", replicates=1, has_source_val=True)


def test_all_picks_reads_only_validator_columns():
    t = _table(f_miou=[0.9, 0.1], mean_entropy=[0.5, 0.1], true_miou=[0.0, 1.0], broken=[0.0, 1.0])
    picks = all_picks(
        t, {"rule": {"rank_average": ["f_miou", "mean_entropy"]}, "paper": "f_miou"}, prefer="c0"
    )
    assert picks == {"f_miou": "c0", "mean_entropy": "c1", "rule": "c0", "paper": "c0"}


# ----------------------------------------------------------------------------------------------
# the full ranking (label-free early stopping stops the bottom of each sweep with it)


def test_order_and_ranks_known_answer():
    t = _table(f_miou=[0.5, 0.9, NAN, 0.9, 0.1], mean_entropy=[0.2, 0.1, 0.3, 0.4, 0.0])
    f = Single("f_miou")
    # 0.9 twice: the preferred one first, else table order; NaN last
    assert f.order(t) == ["c1", "c3", "c0", "c4", "c2"]
    assert f.order(t, prefer="c3") == ["c3", "c1", "c0", "c4", "c2"]
    r = f.ranks(t)
    assert r[["c0", "c1", "c3", "c4"]].tolist() == [3.0, 1.0, 1.0, 4.0] and np.isnan(r["c2"])
    e = Single("mean_entropy")  # lower is better
    assert e.order(t) == ["c4", "c1", "c0", "c2", "c3"] and e.ranks(t).tolist() == [3.0, 2.0, 4.0, 5.0, 1.0]
    two = TwoStage(f, 0.4, e)  # drops the bottom 2 by f_miou (c2 NaN, c4), picks by entropy among the rest
    assert two.order(t) == ["c1", "c0", "c3", "c2", "c4"]
    assert np.isnan(two.ranks(t)[["c2", "c4"]]).all()


@pytest.mark.parametrize("seed", range(6))
def test_order_starts_with_the_pick_and_is_a_permutation(seed):
    rng = np.random.default_rng(seed)
    vals = rng.integers(0, 3, 6).astype(float)
    vals[rng.random(6) < 0.3] = NAN
    t = _table(f_miou=vals, ensv=rng.random(6), mean_entropy=rng.integers(0, 2, 6).astype(float))
    for rule in (Single("f_miou"), parse_rule({"rank_average": ["f_miou", "mean_entropy"]})):
        for prefer in (None, "c3"):
            order = rule.order(t, prefer)
            assert sorted(order) == sorted(t.index)
            pick = rule.pick(t, prefer)
            assert pick is None or order[0] == pick
            scores = rule.scores(t)
            finite = [scores[c] for c in order if not np.isnan(scores[c])]
            assert finite == sorted(finite, reverse=True)  # best first, NaN at the end


def test_descriptions_say_what_the_rule_does():
    assert (
        Single("mean_entropy").description
        == "the best by mean_entropy (mean pixel entropy (nats); lower is better)"
    )
    assert parse_rule({"rank_average": ["ensv", "atc"]}).description == (
        "the best mean rank within the group over ensv, atc"
    )
    assert parse_rule({"two_stage": {"drop": "f_miou", "fraction": 0.5, "pick": "atc"}}).description == (
        "drop the bottom 50% of the group by f_miou, then the best by atc among the rest"
    )


# ---------------------------------------------------------------- agree
AGREE = {"agree": {"families": ["source_val_miou", "bnm", "f_miou"], "need": 2}}


def _three() -> pd.DataFrame:
    # c1 is the default. By hand: source_val_miou picks c2, bnm picks c2, f_miou picks c0.
    return _table(source_val_miou=[0.5, 0.6, 0.7], bnm=[0.1, 0.2, 0.3], f_miou=[0.9, 0.8, 0.7])


def test_agree_parses_and_round_trips() -> None:
    rule = parse_rule(AGREE)
    assert rule.requires == {"source_val_miou", "bnm", "f_miou"}
    assert rule.to_config() == AGREE and parse_rule(rule.to_config()) == rule
    assert rule.text == "agree(2 of: source_val_miou; bnm; f_miou)"


def test_agree_leaves_the_default_when_two_families_pick_the_same_other() -> None:
    assert parse_rule(AGREE).pick(_three(), prefer="c1") == "c2"


def test_agree_stays_at_the_default_without_enough_agreement() -> None:
    t = _three()
    t.loc["c0", "bnm"] = 0.4  # now: source c2, bnm c0, f_miou c0 -> c0 has two votes
    assert parse_rule(AGREE).pick(t, prefer="c1") == "c0"
    t.loc["c1", "bnm"] = 0.9  # source c2, bnm c1, f_miou c0: one vote each
    assert parse_rule(AGREE).pick(t, prefer="c1") == "c1"
    need3 = {"agree": {"families": ["source_val_miou", "bnm", "f_miou"], "need": 3}}
    assert parse_rule(need3).pick(_three(), prefer="c1") == "c1"  # only two of three agree


def test_agree_counts_the_default_as_a_family_pick() -> None:
    t = _table(source_val_miou=[0.5, 0.9, 0.7], bnm=[0.1, 0.5, 0.3], f_miou=[0.9, 0.8, 0.7])
    assert parse_rule(AGREE).pick(t, prefer="c1") == "c1"


def test_agree_tie_between_winners_goes_to_the_better_mean_family_rank() -> None:
    # Four families, need 2: c0 and c2 get two votes each.
    t = _table(
        source_val_miou=[0.9, 0.1, 0.5],
        atc=[0.9, 0.1, 0.5],
        bnm=[0.1, 0.2, 0.9],
        f_miou=[0.2, 0.1, 0.9],
    )
    rule = parse_rule({"agree": {"families": ["source_val_miou", "atc", "bnm", "f_miou"], "need": 2}})
    # ranks (1 worst): c0 3,3,1,2 -> 2.25; c2 2,2,3,3 -> 2.5: c2 wins the tie
    assert rule.pick(t, prefer="c1") == "c2"


def test_agree_without_a_default_in_the_group_takes_the_most_votes() -> None:
    rule = parse_rule(AGREE)
    assert rule.pick(_three(), prefer=None) == "c2"
    assert rule.pick(_three(), prefer="elsewhere") == "c2"
    assert rule.order(_three(), prefer="c1")[0] == "c2"
    assert rule.order(_three(), prefer=None) == ["c2", "c0", "c1"]


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ({"agree": {"families": ["bnm"], "need": 1}}, r"agree\.families: expected a list of at least two"),
        ({"agree": {"families": ["bnm", "bnm"], "need": 1}}, r"agree\.families: lists a rule twice"),
        ({"agree": {"families": ["bnm", "atc"], "need": 3}}, r"agree\.need: expected an integer in \[1, 2\]"),
        ({"agree": {"families": ["bnm", "atc"], "need": True}}, r"agree\.need"),
        ({"agree": {"families": ["bnm", "nope"], "need": 1}}, r"agree\.families\[1\]: unknown rule 'nope'"),
        (
            {"agree": {"families": ["bnm", "atc"]}},
            r"agree: expected a mapping with exactly families and need",
        ),
    ],
)
def test_agree_errors_name_the_field(value: object, pattern: str) -> None:
    with pytest.raises(SelectionError, match=r"selection\.rule\." + pattern):
        parse_rule(value)
