"""Config errors name the field (dotted path) or the file; overrides and ``with_parameters``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hiast.config import DEFAULT_CONFIG, TUNABLE_PARAMETERS, ConfigError, HIASTConfig, load_config

MINIMAL = """\
data:
  source: {name: synthscape, domain: source}
  target: {name: synthscape, domain: target}
"""


def _write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- loading
def test_load_none_gives_the_embedded_synthscape_default() -> None:
    cfg = load_config(None)
    assert isinstance(cfg, HIASTConfig)
    assert cfg == load_config(DEFAULT_CONFIG)
    assert cfg.data.source.name == cfg.data.target.name == "synthscape"
    assert (cfg.data.source.domain, cfg.data.target.domain) == ("source", "target")
    assert set(cfg.parameters()) == set(TUNABLE_PARAMETERS)
    assert isinstance(cfg.parameters()["k"], int)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.ias.alpha == 0.5 and cfg.hpla.k == 14


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir" / "absent.yaml"
    with pytest.raises(ConfigError, match="not found") as e:
        load_config(missing)
    assert str(missing) in str(e.value)
    # A folder is not a config file either.
    with pytest.raises(ConfigError, match="not found") as e:
        load_config(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  source: {name: synthscape, domain: source\n  x: [1, 2\n", "broken.yaml")
    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    for text in ("- 1\n- 2\n", "", "just a string\n"):
        path = _write(tmp_path, text, "list.yaml")
        with pytest.raises(ConfigError, match="mapping") as e:
            load_config(path)
        assert str(path) in str(e.value)


# ---------------------------------------------------------------- field errors
@pytest.mark.parametrize("alpha", [0.0, -0.2, 1.5, 1.0000001])
def test_alpha_outside_zero_one_fails_naming_ias_alpha(alpha: float) -> None:
    with pytest.raises(ConfigError, match=r"ias\.alpha") as e:
        load_config(None, {"ias.alpha": alpha})
    assert str(DEFAULT_CONFIG) in str(e.value)  # ...and which file it came from
    assert repr(alpha) in str(e.value)  # ...and the value given


@pytest.mark.parametrize("alpha", [1.0, 1e-6, 0.5])
def test_alpha_inside_zero_one_is_accepted(alpha: float) -> None:
    assert load_config(None, {"ias.alpha": alpha}).ias.alpha == alpha


def test_every_offending_field_is_listed(tmp_path: Path) -> None:
    text = MINIMAL + "ias: {alpha: 2.0, beta: 1.0}\nhpla: {k: 0}\nselftrain: {rounds: 0}\n"
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, text))
    msg = str(e.value)
    for field in ("ias.alpha", "ias.beta", "hpla.k", "selftrain.rounds"):
        assert field in msg, (field, msg)


def test_unknown_top_level_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"learning_rate: Extra inputs are not permitted"):
        load_config(None, {"learning_rate": 0.1})


def test_unknown_nested_key_is_named_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"ias\.alhpa: Extra inputs"):
        load_config(None, {"ias.alhpa": 0.3})


def test_the_job_sections_are_left_to_the_job(tmp_path: Path) -> None:
    text = MINIMAL + "selection: {rule: not-a-rule}\nray: {num_workers: 0}\n"
    cfg = load_config(_write(tmp_path, text))  # the method's loader does not read them
    assert "selection" not in cfg.model_dump() and "ray" not in cfg.model_dump()
    with pytest.raises(ConfigError, match=r"selection\.rule: read by the search job"):
        load_config(None, {"selection.rule": "f_miou"})
    with pytest.raises(ConfigError, match=r"sleection: Extra inputs"):
        load_config(_write(tmp_path, MINIMAL + "sleection: {}\n", "typo.yaml"))


# ---------------------------------------------------------------- overrides
def test_dotted_overrides_reach_nested_fields() -> None:
    cfg = load_config(
        None,
        {
            "selftrain.iters_per_round": 7,
            "data.synthscape.image_size": [32, 64],
            "data.target.limit": 5,
            "warmup.checkpoint": "runs/x/warmup.pt",
            "seed": 11,
        },
    )
    assert cfg.selftrain.iters_per_round == 7
    assert cfg.data.synthscape.image_size == (32, 64)
    assert cfg.data.target.limit == 5
    assert cfg.warmup.checkpoint == Path("runs/x/warmup.pt")
    assert cfg.seed == 11
    # Untouched siblings keep the file's values.
    default = load_config(None)
    assert cfg.selftrain.batch_size == default.selftrain.batch_size
    assert cfg.data.synthscape.n_target_train == default.data.synthscape.n_target_train


def test_dotted_override_creates_a_missing_section(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL), {"ias.alpha": 0.3, "hpla.k": 2})
    assert cfg.ias.alpha == 0.3 and cfg.hpla.k == 2
    assert cfg.ias.beta == 0.9  # the rest of the new section is defaulted


def test_override_with_a_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"data\.synthscape\.image_size"):
        load_config(None, {"data.synthscape.image_size": [30, 64]})
    with pytest.raises(ConfigError, match=r"selftrain\.iters_per_round"):
        load_config(None, {"selftrain.iters_per_round": 0})


@pytest.mark.parametrize("dotted", ["seed.x", "ias.alpha.low"])
def test_override_through_a_non_section_is_a_config_error(dotted: str) -> None:
    with pytest.raises(ConfigError, match=dotted.replace(".", r"\.")):
        load_config(None, {dotted: 1})


# ---------------------------------------------------------------- with_parameters
def test_with_parameters_applies_validates_and_copies() -> None:
    cfg = load_config(None)
    new = cfg.with_parameters({"alpha": 0.2, "k": 5.0, "lambda_i": 3})
    assert new.ias.alpha == 0.2 and new.loss.lambda_i == 3.0
    assert new.hpla.k == 5 and isinstance(new.hpla.k, int)
    assert cfg.ias.alpha == 0.5 and cfg.hpla.k == 3  # the original is unchanged
    assert new.parameters() == {**cfg.parameters(), "alpha": 0.2, "k": 5, "lambda_i": 3.0}


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"k": 2.5}, r"hpla\.k must be an integer"),
        ({"k": 0}, r"hpla\.k"),
        ({"alpha": 0}, r"ias\.alpha"),
        ({"alpha": 1.01}, r"ias\.alpha"),
        ({"beta": 1.0}, r"ias\.beta"),
        ({"lambda_cst": -1}, r"loss\.lambda_cst"),
        ({"tau": 0.5}, r"unknown parameter 'tau'"),
    ],
)
def test_with_parameters_rejects_bad_values(params: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(None).with_parameters(params)


@pytest.mark.parametrize("k", [math.nan, math.inf, "x"])
def test_with_parameters_non_number_k_is_a_config_error(k: object) -> None:
    with pytest.raises(ConfigError, match=r"hpla\.k"):
        load_config(None).with_parameters({"k": k})
