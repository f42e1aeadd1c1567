"""selection.early_stop: off by default, and a bad value fails naming the field before anything runs."""

from __future__ import annotations

import pytest

from hiast.config import ConfigError, packaged_configs
from ray_jobs.config import load_job_config


@pytest.mark.parametrize("name", sorted(packaged_configs()))
def test_off_in_every_packaged_config(name: str) -> None:
    assert load_job_config(name).selection.early_stop is None


def test_a_valid_setting_loads() -> None:
    cfg = load_job_config(
        None, {"selection.early_stop": {"after_round": 2, "keep": 0.25}, "selftrain.rounds": 3}
    )
    assert (cfg.selection.early_stop.after_round, cfg.selection.early_stop.keep) == (2, 0.25)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"after_round": 0}, "selection.early_stop.after_round"),
        ({"after_round": 3}, "selection.early_stop.after_round must be below selftrain.rounds (3)"),
        ({"after_round": 1, "keep": 0}, "selection.early_stop.keep"),
        ({"after_round": 1, "keep": 1.5}, "selection.early_stop.keep"),
        ({"after_round": 1, "kept": 0.5}, "selection.early_stop.kept"),
    ],
)
def test_bad_values_fail_naming_the_field(value: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        load_job_config(None, {"selection.early_stop": value, "selftrain.rounds": 3})
