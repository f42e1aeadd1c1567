"""Every shipped config validates; the real-scenario configs carry the paper's settings (HIAST §5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiast.config import ConfigError
from hiast.data.classes import CITYSCAPES19_CLASSES, MIOU16_CLASSES, ROBOTCAR9_CLASSES
from ray_jobs.config import JobConfig, load_job_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = sorted(CONFIGS.glob("*.yaml"))

# scenario file -> (k, crop (H, W), source crop heights, target crop heights, eval classes, classes)
PAPER = {
    "gta5_to_cityscapes.yaml": (14, (512, 1024), (341, 850), (341, 1000), CITYSCAPES19_CLASSES, 19),
    "synthia_to_cityscapes.yaml": (10, (512, 1024), (341, 640), (341, 1000), MIOU16_CLASSES, 19),
    "cityscapes_to_robotcar.yaml": (5, (768, 1024), (341, 1000), (341, 900), ROBOTCAR9_CLASSES, 9),
}


def test_the_real_scenarios_are_shipped() -> None:
    assert set(PAPER) <= {p.name for p in ALL}


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_every_config_validates(path: Path) -> None:
    cfg = load_job_config(path)
    assert isinstance(cfg, JobConfig)
    # each sweep holds the run's own value, so the default is always one of the candidates
    params = cfg.parameters()
    for name, values in cfg.selection.parameters.items():
        assert params[name] in values, f"{path.name}: {name} sweep {values} lacks the default {params[name]}"


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_settings(name: str) -> None:
    k, crop, src_h, tgt_h, eval_classes, num_classes = PAPER[name]
    cfg = load_job_config(CONFIGS / name)
    assert (cfg.ias.alpha, cfg.ias.beta, cfg.ias.gamma, cfg.ias.variant) == (0.5, 0.9, 8.0, "paper")
    assert (cfg.loss.lambda_i, cfg.loss.lambda_c, cfg.loss.lambda_cst) == (1.0, 0.1, 0.5)
    assert cfg.hpla.enabled and cfg.hpla.k == k
    st = cfg.selftrain
    assert (st.rounds, st.iters_per_round, st.batch_size, st.lr, st.tau) == (3, 8000, 6, 3e-5, 0.999)
    assert st.freeze_bn
    d = cfg.data
    assert d.num_classes == num_classes and d.eval_classes == eval_classes
    assert (d.crop_size, d.source_crop_height, d.target_crop_height) == (crop, src_h, tgt_h)
    assert cfg.model.arch == "deeplab_v2" and cfg.model.pretrained_backbone is not None
    assert cfg.ray.use_gpu and cfg.ray.gpus_per_worker == 1
    assert cfg.selection.subset_size == 500 and cfg.selection.mode == "sweep"
    assert cfg.selection.parameters["alpha"] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert d.target_val is not None and d.target_val.split == "val"
    if d.target.name == "cityscapes":
        assert d.eval_size == (768, 1536)
    if num_classes == 9:  # the Cityscapes source must be mapped to the nine RobotCar classes
        assert d.source.class_set == "robotcar9" and d.target.name == "robotcar"


def test_out_of_range_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"ias\.alpha") as e:
        load_job_config(CONFIGS / "gta5_to_cityscapes.yaml", {"ias.alpha": 1.5})
    assert "gta5_to_cityscapes.yaml" in str(e.value)


def test_unknown_selection_parameter_is_named() -> None:
    with pytest.raises(ConfigError, match="'delta'"):
        load_job_config(CONFIGS / "synthia_to_cityscapes.yaml", {"selection.parameters": {"delta": [1, 2]}})


def test_invalid_sweep_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"selection\.parameters\.k value 2\.5"):
        load_job_config(CONFIGS / "cityscapes_to_robotcar.yaml", {"selection.parameters": {"k": [2.5, 5]}})
