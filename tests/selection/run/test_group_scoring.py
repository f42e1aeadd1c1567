"""The scoring steps on their own: the trim check, group scores and notes, seed agreement."""

from __future__ import annotations

import numpy as np
import pytest
from selection_families import SWEEP_CLASSES, degenerate_pair_family, sweep_setup, write_family

from selection import SelectionError, build_candidates, parse_rule
from selection.decision.centre_bias import CentreBias
from selection.decision.trimming import DEFAULT_TRIM_RULE
from selection.run.group_scoring import check_trimmed, group_notes, group_scores, seed_scores
from selection.run.plan import accumulate, make_plan
from selection.run.validator_table import group_tables
from selection.validators.registry import ScoreValues, direction

NO_CENTRE = CentreBias(picks={}, verdicts={}, centre_bound=[], candidate_ids=set(), notes=[])


def _groups(plan, first, second, degenerate, rule="f_miou"):
    tables = group_tables(plan, first, second, degenerate)
    return group_scores(
        plan,
        first,
        second,
        degenerate,
        tables=tables,
        half_tables=None,
        rule=parse_rule(rule),
        centre=NO_CENTRE,
    )


def test_the_trim_check_names_who_must_be_re_voted(tmp_path):
    cands, uris, ids, maps, truth, roles = degenerate_pair_family(tmp_path)
    plan = make_plan(cands, uris, ids, 5)
    first = accumulate(plan).whole
    collapsed = tuple(cid for cid, r in roles.items() if r in ("D1", "D2"))
    with pytest.raises(
        SelectionError, match=r"trimming flags \{'alpha': .*pass-2 accumulator covers nothing"
    ):
        check_trimmed(plan, first, None)
    second = accumulate(plan.trimmed(first)).whole
    assert check_trimmed(plan, first, second) == {"alpha": collapsed}
    groups = _groups(plan, first, second, {"alpha": collapsed}, rule="f_miou_trimmed")
    gs = groups["alpha"]
    assert gs.degenerate == collapsed and gs.pick == next(c for c, r in roles.items() if r == "A")
    assert gs.untrimmed_pick == next(c for c, r in roles.items() if r == "B")
    assert gs.f_miou_trimmed != gs.f_miou and 0 <= gs.undecided_fraction < 1
    assert gs.score_used == "f_miou_trimmed" and gs.picks["rule"] == gs.pick
    assert any("not measured" in r for r in gs.confidence.reasons)
    notes = group_notes(groups, DEFAULT_TRIM_RULE)
    assert len(notes) == 2 and "2 candidate(s) scored far below the rest" in notes[0]
    assert notes[1] == (
        f"In sweep 'alpha', the rule f_miou_trimmed picks {gs.pick}; the paper's F-mIoU would pick "
        f"{gs.untrimmed_pick}."
    )


def test_notes_for_a_pair_and_for_a_group_that_decided_nothing(tmp_path):
    cands = build_candidates({"alpha": 0.5, "k": 3}, {"alpha": [0.1], "k": [1]}, "sweep")
    ids = ["i0"]
    maps = {c.id: [np.full((2, 3), k, np.uint8)] for k, c in enumerate(cands)}  # all disagree: all ties
    plan = make_plan(cands, write_family(tmp_path, cands, maps, ids, 3), ids, 3, trim_rule=None)
    first = accumulate(plan).whole
    groups = _groups(plan, first, None, {})
    assert [g.pick for g in groups.values()] == [None, None]
    assert group_notes(groups, None) == [
        "In sweep 'alpha' the rule f_miou has no finite value for any candidate: no pick (the parameter "
        "stays at its default).",
        "Sweep 'alpha' has only 2 candidates: any disagreement is a tie, so the vote cannot discriminate "
        "between them.",
        "In sweep 'k' the rule f_miou has no finite value for any candidate: no pick (the parameter "
        "stays at its default).",
        "Sweep 'k' has only 2 candidates: any disagreement is a tie, so the vote cannot discriminate "
        "between them.",
    ]


def test_seed_agreement_needs_two_replicates(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path, replicates=True)
    plan = make_plan(cands, uris, ids, SWEEP_CLASSES)
    seed, agreement = seed_scores(plan, accumulate(plan).whole)
    assert set(seed) == {c.id for c in cands} and all(0 < v <= 1 for v in seed.values())
    assert agreement.shape == (len(cands), len(cands)) and np.allclose(np.diag(agreement), 1)
    single = make_plan(cands, {c: u[0] for c, u in uris.items()}, ids, SWEEP_CLASSES, agreement=False)
    assert seed_scores(single, accumulate(single).whole) == ({}, None)


def test_extra_scores_take_their_direction_from_the_registry_or_their_score_values():
    assert direction("mean_entropy", {"a": 1.0}) is False
    assert direction("atc", {"a": 1.0}) is True
    assert direction("my_score", ScoreValues({"a": 1.0}, higher_is_better=False)) is False
    with pytest.raises(SelectionError, match="not a registered validator"):
        direction("my_score", {"a": 1.0})
