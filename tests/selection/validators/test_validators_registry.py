"""The one registry of label-free validators (selection.validators.registry): directions, needs,
costs, the lookup, and the spec's own checks."""

from __future__ import annotations

import pytest

from selection.errors import SelectionError
from selection.validators import NEEDS, VALIDATORS, ValidatorSpec, validator

LOWER_IS_BETTER = {"mean_entropy", "dev", "iwcv"}  # an entropy and two risks
GROUP_SCOPE = {"f_miou", "f_miou_trimmed", "ensv", "f_miou_lno"}  # scored against the other candidates


def test_registry_is_consistent():
    assert list(VALIDATORS) == [s.name for s in VALIDATORS.values()]
    for name, spec in VALIDATORS.items():
        assert spec.needs <= NEEDS and spec.scope in ("self", "group")
        assert spec.higher_is_better is (name not in LOWER_IS_BETTER)
        assert (spec.scope == "group") is (name in GROUP_SCOPE)
        assert (spec.function is None) is (name == "f_miou_trimmed")  # computed inside the vote pass
        assert spec.extra_passes == (1 if name.startswith("mixval") or name == "seed_agreement" else 0)
        assert spec.extra_trainings == (1 if name == "seed_agreement" else 0)
        assert spec.description and spec.cost
    assert "confidence" not in VALIDATORS and "entropy" not in VALIDATORS  # renamed: no clash with choice's


def test_the_vocabulary_of_needs():
    assert NEEDS == {"labels", "target_probs", "source_probs", "mixval", "replicates", "source_val_miou"}
    # what each family reads, as the evidence writer must provide it
    assert VALIDATORS["f_miou"].needs == {"labels"}
    assert VALIDATORS["ensv"].needs == {"target_probs"}
    assert VALIDATORS["atc"].needs == VALIDATORS["dev"].needs == {"target_probs", "source_probs"}
    assert VALIDATORS["seed_agreement"].needs == {"replicates"}
    assert {n for n, s in VALIDATORS.items() if "mixval" in s.needs} == {
        "mixval",
        "mixval_inter",
        "mixval_intra",
    }


def test_functions_are_the_modules_public_ones():
    from selection.validators import atc, bnm, ensv, f_miou, mean_entropy, mixval, seed_agreement, snd

    for name, fn in {
        "f_miou": f_miou,
        "ensv": ensv,
        "atc": atc,
        "snd": snd,
        "bnm": bnm,
        "mean_entropy": mean_entropy,
        "mixval": mixval,
        "seed_agreement": seed_agreement,
    }.items():
        assert VALIDATORS[name].function is fn, name


def test_lookup_by_name_and_an_unknown_name_says_where():
    assert validator("snd") is VALIDATORS["snd"]
    with pytest.raises(SelectionError, match="selection.rule: unknown validator 'nope'; known: f_miou, "):
        validator("nope", "selection.rule")
    with pytest.raises(SelectionError, match="^validator: unknown validator 'SND'"):
        validator("SND")  # names are exact, not case-folded


@pytest.mark.parametrize(
    ("needs", "scope", "message"),
    [
        (frozenset(), "self", "needs must be a non-empty subset"),
        (frozenset({"labels", "logits"}), "self", "needs must be a non-empty subset"),
        (frozenset({"labels"}), "pairwise", "scope must be 'self' or 'group'"),
    ],
)
def test_a_spec_checks_its_needs_and_scope(needs, scope, message):
    with pytest.raises(ValueError, match=f"validator 'x': {message}"):
        ValidatorSpec("x", True, needs, scope, "d", None)


def test_a_spec_defaults_to_no_extra_cost():
    spec = ValidatorSpec("x", False, frozenset({"target_probs"}), "self", "d", None)
    assert (spec.extra_passes, spec.extra_trainings) == (0, 0)
    assert spec.cost == "nothing beyond the prediction pass"
    with pytest.raises(AttributeError):
        spec.name = "y"  # frozen: the registry's entries cannot be edited in place
