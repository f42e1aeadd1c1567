"""Confidence: each reason on its own, the exact thresholds, and overall = any group low."""

from __future__ import annotations

from selection.decision.confidence import group_confidence, overall_confidence
from selection.decision.rules import parse_rule

RULE = parse_rule("f_miou")


FAMILIES = {"source-side": "a", "information": "b", "consensus": "a"}


def conf(pick="a", picks=None, centre=False, halves=("a", "a"), images=10, families=None):
    picks = {"f_miou": "a", "ensv": "a", "atc": "b", "snd": None} if picks is None else picks
    return group_confidence(
        RULE,
        pick,
        picks,
        centre_bound=centre,
        half_picks=halves,
        images=images,
        family_picks=FAMILIES if families is None else families,
    )


def test_high_when_nothing_holds():
    c = conf()
    assert c.level == "high" and c.reasons == []
    # snd has no value in the group: it is not counted
    assert (c.agreeing, c.validators) == (2, 3) and c.half_picks == ["a", "a"]
    assert c.families_agreeing == 2 and c.family_picks == FAMILIES


def test_the_families_must_agree_by_more_than_half():
    low = conf(families={"source-side": "a", "information": "b", "consensus": "c"})
    assert low.level == "low"
    assert low.reasons == [
        "the families disagree: 1 of the 3 families pick a (not more than half; consensus c, information b)"
    ]
    # A family that could not pick (None) is not counted: 1 of 2 is not more than half, 2 of 2 is.
    assert conf(families={"source-side": "a", "information": "b", "consensus": None}).level == "low"
    assert conf(families={"source-side": "a", "information": "a", "consensus": None}).level == "high"
    assert conf(families={}).level == "high"  # nothing to judge by is not a reason


def test_the_validators_agreeing_is_recorded_but_no_reason():
    c = conf(picks={"f_miou": "a", "ensv": "b", "atc": "b", "snd": "b"})
    assert c.level == "high" and (c.agreeing, c.validators) == (1, 4)


def test_noise_and_no_pick():
    assert conf(halves=("a", "b")).reasons == [
        "within noise: on the subset's two halves the rule picks a and b, not a on both"
    ]
    assert conf(halves=("a", None)).level == "low"  # no pick on a half is noise too
    assert "fewer than 2 images" in conf(images=1).reasons[0]
    assert "not measured" in conf(halves=None).reasons[0]
    none = conf(pick=None, picks={"f_miou": None}, halves=(None, None))
    assert none.reasons == ["the rule f_miou has no finite value for any candidate: no pick"]


def test_centre_bound_is_recorded_but_no_reason():
    c = conf(centre=True)
    assert c.level == "high" and c.reasons == [] and c.centre_bound is True


def test_every_reason_is_listed_in_order():
    c = conf(families={"information": "b"}, centre=True, halves=("b", "a"))
    assert [r.split(":")[0] for r in c.reasons] == ["the families disagree", "within noise"]


def test_overall_is_low_when_any_group_is_and_names_the_group():
    gamma = conf(families={"information": "b"})
    groups = {"alpha": conf(), "gamma": gamma, "grid": conf(halves=("b", "a"))}
    o = overall_confidence(groups)
    assert o.level == "low" and o.groups == groups
    assert o.reasons[0].startswith("gamma: the families disagree")
    assert o.reasons[1].startswith("the grid: within noise")
    assert overall_confidence({"alpha": conf()}).level == "high"
