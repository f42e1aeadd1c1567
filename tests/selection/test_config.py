"""selection.config: the selection section alone (the job checks what needs the method's names)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from selection import DEFAULT_RULE, EarlyStopConfig, SelectionConfig, default_rule, parse_rule
from selection.decision.rules import RankAverage, Single


def test_defaults() -> None:
    c = SelectionConfig()
    assert (c.mode, c.parameters, c.subset_size, c.replicates, c.early_stop) == ("sweep", {}, 500, 1, None)
    assert c.rule == parse_rule(DEFAULT_RULE)
    assert default_rule() == DEFAULT_RULE


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("f_miou", Single("f_miou")),
        ({"rank_average": ["atc", "bnm"]}, RankAverage((Single("atc"), Single("bnm")))),
    ],
)
def test_the_rule_parses_and_dumps_back(value: object, rule: object) -> None:
    c = SelectionConfig(rule=value)
    assert c.rule == rule
    assert c.model_dump(mode="json")["rule"] == value
    assert SelectionConfig.model_validate(c.model_dump(mode="json")) == c


def test_a_bad_rule_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"selection\.rule: unknown rule 'nope'"):
        SelectionConfig(rule="nope")


@pytest.mark.parametrize(
    ("parameters", "pattern"),
    [({"gamma": []}, "'gamma' has an empty list"), ({"alpha": [0.3, 0.3]}, "'alpha' lists a value twice")],
)
def test_bad_value_lists(parameters: dict, pattern: str) -> None:
    with pytest.raises(ValidationError, match=pattern):
        SelectionConfig(parameters=parameters)


def test_unknown_fields_and_ranges_are_refused() -> None:
    with pytest.raises(ValidationError, match="subset_sise"):
        SelectionConfig(subset_sise=10)
    with pytest.raises(ValidationError, match="keep"):
        EarlyStopConfig(keep=0)
