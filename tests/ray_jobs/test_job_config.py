"""The job's config: the method's with the selection and Ray sections; errors name the field."""

from __future__ import annotations

import math

import pytest

from hiast.config import TUNABLE_PARAMETERS, ConfigError, HIASTConfig, load_config
from ray_jobs.config import JobConfig, RayConfig, load_job_config
from selection.config import DEFAULT_RULE, SelectionConfig
from selection.decision.rules import TwoStage, parse_rule


def test_the_job_config_is_the_methods_plus_two_sections() -> None:
    job, method = load_job_config(None), load_config(None)
    assert isinstance(job, JobConfig) and isinstance(job, HIASTConfig)
    assert job.model_dump(exclude={"selection", "ray"}) == method.model_dump()
    assert isinstance(job.selection, SelectionConfig) and isinstance(job.ray, RayConfig)


def test_the_rule_is_a_rule_in_memory_and_its_yaml_form_on_disk() -> None:
    assert load_job_config(None).selection.rule == parse_rule(DEFAULT_RULE)
    assert load_job_config(None).model_dump(mode="json")["selection"]["rule"] == DEFAULT_RULE
    two_stage = {"two_stage": {"drop": "f_miou_trimmed", "fraction": 0.5, "pick": "bnm"}}
    cfg = load_job_config(None, {"selection.rule": two_stage})
    assert isinstance(cfg.selection.rule, TwoStage)
    assert cfg.model_dump(mode="json")["selection"]["rule"] == two_stage
    assert JobConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    assert load_job_config(None, {"selection.rule": "f_miou"}).selection.rule.text == "f_miou"


@pytest.mark.parametrize(
    ("rule", "pattern"),
    [
        ("nope", r"selection\.rule: .*unknown rule 'nope'"),
        ({"two_stage": {"drop": "f_miou", "fraction": 1.5, "pick": "bnm"}}, r"two_stage\.fraction"),
        ({"rank_average": []}, r"rank_average: expected a non-empty list"),
    ],
)
def test_a_bad_rule_fails_at_load_naming_the_field(rule: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_job_config(None, {"selection.rule": rule})


def test_a_candidate_config_keeps_its_type_and_sweeps_nothing() -> None:
    cfg = load_job_config(None, {"selection.parameters": {"alpha": [0.1, 0.5]}})
    new = cfg.with_parameters({"alpha": 0.1})
    assert isinstance(new, JobConfig) and new.ias.alpha == 0.1
    assert new.selection.parameters == {} and cfg.selection.parameters == {"alpha": [0.1, 0.5]}
    assert new.selection.rule == cfg.selection.rule and new.ray == cfg.ray


def test_bad_ray_fields_are_named() -> None:
    with pytest.raises(ConfigError, match=r"ray\.worker_resources: .*'CPU' is not a custom resource"):
        load_job_config(None, {"ray.worker_resources": {"CPU": 1}})
    with pytest.raises(ConfigError, match=r"ray\.num_workers"):
        load_job_config(None, {"ray.num_workers": 0})


def test_unknown_selection_parameter_is_named() -> None:
    with pytest.raises(ConfigError, match=r"selection\.parameters.*unknown parameter 'tau'") as e:
        load_job_config(None, {"selection.parameters": {"alpha": [0.5], "tau": [0.9]}})
    for name in TUNABLE_PARAMETERS:  # the message lists what is allowed
        assert name in str(e.value)


@pytest.mark.parametrize(
    ("name", "values", "field"),
    [
        ("alpha", [0.5, 1.5], "ias.alpha"),
        ("beta", [1.0], "ias.beta"),
        ("gamma", [-1.0], "ias.gamma"),
        ("lambda_i", [-0.5], "loss.lambda_i"),
        ("k", [3, 0], "hpla.k"),
        ("k", [2.5], "hpla.k"),
    ],
)
def test_selection_value_out_of_range_names_the_parameter(name: str, values: list, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_job_config(None, {"selection.parameters": {name: values}})
    msg = str(e.value)
    assert f"selection.parameters.{name}" in msg, msg
    assert field in msg, msg


def test_empty_or_repeated_selection_values_fail() -> None:
    with pytest.raises(ConfigError, match=r"'gamma' has an empty list"):
        load_job_config(None, {"selection.parameters": {"gamma": []}})
    with pytest.raises(ConfigError, match=r"'alpha' lists a value twice"):
        load_job_config(None, {"selection.parameters": {"alpha": [0.3, 0.3]}})


def test_valid_selection_is_kept() -> None:
    cfg = load_job_config(None, {"selection.parameters": {"alpha": [0.1, 1.0], "k": [1, 5]}})
    assert cfg.selection.parameters == {"alpha": [0.1, 1.0], "k": [1.0, 5.0]}


@pytest.mark.parametrize("k", [math.inf, math.nan])
def test_selection_non_finite_k_names_the_parameter(k: float) -> None:
    with pytest.raises(ConfigError, match=r"selection\.parameters\.k"):
        load_job_config(None, {"selection.parameters": {"k": [k]}})
