"""The dashboard's sections (selection.report.context), each a function of the checked facts,
worked out by hand on the table of ``report_tables``."""

from __future__ import annotations

import json

import numpy as np
from report_tables import CONFIG, DEGENERATE_ID, FAILED_ERROR, FAILED_ID, VOTED, choice, facts, table

from selection.report import CENTRE_BOUND_SENTENCE
from selection.report.context import (
    ParameterRow,
    candidate_rows,
    failed_candidates,
    page_context,
    replicate_table,
    score_values,
    settings,
    summary,
    sweep_cards,
)


def test_summary_counts_and_the_chosen_parameters() -> None:
    s = summary(facts())
    assert (s.finished, s.total, s.candidates, s.failed, s.pending, s.degenerate, s.broken) == (
        5,
        5,
        5,
        1,
        0,
        1,
        0,
    )
    assert s.parameters == [ParameterRow("alpha", 0.5, 0.5), ParameterRow("gamma", 2.0, 8.0)]
    assert [p.changed for p in s.parameters] == [False, True]
    assert s.centre_bound == ["alpha"] and s.rule == choice()["rule"] and s.confidence["level"] == "low"


def test_summary_without_a_choice_counts_pending() -> None:
    t = table()
    t.loc[[0, 2], "status"] = "pending"
    s = summary(facts(t, None, total_candidates=9))
    assert (s.finished, s.pending, s.total) == (3, 2, 9)
    assert s.choice is None and s.parameters == [] and s.rule is None
    assert not ParameterRow("alpha", 0.5, None).changed  # no default to differ from


def test_sweep_cards_by_hand() -> None:
    alpha, gamma = sweep_cards(facts())
    assert (alpha.param, alpha.group, alpha.pick_id, alpha.pick_value, alpha.default) == (
        "alpha",
        "alpha",
        "default",
        0.5,
        0.5,
    )
    assert alpha.centre_bound and alpha.centre_detail == "the pick is the centre of every window"
    assert (alpha.score_used, alpha.pick_score) == ("f_miou", 0.8)
    assert alpha.facts == ["undecided pixels in the vote: 12.5%", f"degenerate here: {DEGENERATE_ID}"]
    assert alpha.confidence == {"level": "low", "reasons": ["centre-bound"]} and alpha.chart is not None
    assert not gamma.centre_bound and gamma.centre_detail == "" and gamma.confidence is None
    assert (gamma.pick_value, gamma.pick_score, gamma.default) == (2.0, 0.75, 8.0)
    assert gamma.facts == ["without trimming the pick would be default"]


def test_a_sweep_without_a_vote_says_so() -> None:
    ch = choice()
    del ch["per_sweep"]["gamma"]
    f = facts(ch=ch, config={"selection": {"parameters": {"alpha": [], "gamma": []}}})
    gamma = next(c for c in sweep_cards(f) if c.param == "gamma")
    assert gamma.facts == ["no vote in this sweep (see the notes above)"]
    assert gamma.pick_id is None and gamma.pick_value is None and gamma.chart is None
    assert all(c.pick_id is None and c.facts == [] for c in sweep_cards(facts(ch=None)))


def test_candidate_rows() -> None:
    rows = {r.candidate_id: r for r in candidate_rows(facts())}
    assert list(rows) == ["alpha=0.1", "default", "alpha=0.9", "gamma=2", FAILED_ID]
    d = rows["default"]
    assert (d.sweeps, d.values, d.status, d.f_miou, d.true_miou) == (
        ["alpha", "gamma"],
        [0.5, 8.0],
        "done",
        0.75,
        0.55,
    )
    assert d.picked_in == ["alpha"] and rows["gamma=2"].picked_in == ["gamma"]
    assert not any(r.chosen for r in rows.values())  # the combined setting is no candidate
    assert rows[DEGENERATE_ID].degenerate and not d.degenerate
    failed = rows[FAILED_ID]
    assert (failed.status, failed.f_miou, failed.true_miou, failed.picked_in) == ("failed", None, None, [])


def test_the_chosen_candidate_and_centre_bound_flags() -> None:
    t = table().assign(centre_bound=[False, True, np.nan, np.False_, np.nan])
    rows = {r.candidate_id: r for r in candidate_rows(facts(t, {**choice(), "candidate_id": "default"}))}
    assert [cid for cid, r in rows.items() if r.chosen] == ["default"]
    assert [cid for cid, r in rows.items() if r.centre_bound] == ["default"]  # NaN is no flag


def test_failed_candidates_with_and_without_an_error() -> None:
    assert failed_candidates(facts()) == [(FAILED_ID, FAILED_ERROR)]
    assert failed_candidates(facts(table().assign(error=np.nan))) == [(FAILED_ID, None)]
    assert failed_candidates(facts(table().drop(columns="error"))) == [(FAILED_ID, None)]
    assert failed_candidates(facts(table().assign(status="done"))) == []


def test_score_values_of_voted_candidates() -> None:
    cols, rows = score_values(facts())
    assert [c.name for c in cols] == ["f_miou", "mean_entropy", "true_miou"]
    assert [r[0] for r in rows] == VOTED
    assert rows[2] == (DEGENERATE_ID, True, [0.7, 0.2, 0.6])
    assert rows[0] == ("alpha=0.1", False, [0.6, 0.3, 0.5])


def test_replicates_need_two() -> None:
    assert replicate_table(facts()) is None
    assert replicate_table(facts(table().assign(true_miou__rep0=0.5))) is None
    t = table().assign(f_miou__rep0=0.1, f_miou__rep1=0.2, true_miou__rep0=0.3)
    r = replicate_table(facts(t))
    assert (r.names, r.replicates) == (["f_miou", "true_miou"], [0, 1])
    assert r.rows[0] == ("alpha=0.1", [0.1, 0.2, 0.3, None])  # true_miou has no replicate 1


def test_settings_rows_per_section() -> None:
    assert settings(facts()) == [
        ("experiment", '"tiny"'),
        ("data", [("eval_classes", "[0, 1]")]),
        (
            "selection",
            [("mode", '"sweep"'), ("parameters", '{"alpha": [0.1, 0.5, 0.9], "gamma": [2, 8, 16]}')],
        ),
    ]
    assert settings(facts(config=None)) == []


def test_page_context() -> None:
    ctx = page_context(facts(), "2026-01-01 00:00:00 UTC")
    assert ctx["title"] == "hiast-select — tiny" and ctx["generated"] == "2026-01-01 00:00:00 UTC"
    assert ctx["centre_bound_sentence"] == CENTRE_BOUND_SENTENCE
    assert ctx["params"] == ctx["groups"] == ["alpha", "gamma"]
    assert ctx["chart_score"] == "f_miou" and ctx["has_per_group_scores"] and ctx["has_true"]
    assert [r.score.name for r in ctx["score_picks"]] == ["f_miou", "mean_entropy", "true_miou"]
    assert ctx["rankings"] == [] and ctx["replicates"] is None
    assert ctx["agreement"] is not None and ctx["per_class"] is not None
    assert json.loads(ctx["config_json"]) == CONFIG
    bare = page_context(facts(ch=None, config=None), "now")
    assert (
        bare["title"] == "hiast-select — selection"
        and bare["score_picks"] == []
        and bare["config_json"] == ""
    )


def test_the_legend_names_the_first_f_miou_a_group_voted_with() -> None:
    ch = choice()
    ch["per_sweep"]["alpha"]["score_used"] = "f_miou_trimmed"
    assert page_context(facts(ch=ch), "now")["chart_score"] == "f_miou_trimmed"
    ch["per_sweep"]["alpha"]["score_used"] = "mean_entropy"  # gamma's f_miou is the first F-mIoU now
    assert page_context(facts(ch=ch), "now")["chart_score"] == "f_miou"
    ch["per_sweep"]["gamma"]["score_used"] = "rank_average(mean_entropy, f_miou_lno)"
    assert page_context(facts(ch=ch), "now")["chart_score"] == "f_miou"  # no F-mIoU rule: plain F-mIoU
