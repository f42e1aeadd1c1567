"""The Train worker's config: typed, and a dict only at Ray Train's boundary."""

from __future__ import annotations

import dataclasses

import pytest
from ray import cloudpickle

from ray_jobs.worker import LoopConfig, from_train_config, to_train_config


def _loop(**changes) -> LoopConfig:
    loop = LoopConfig(
        cfg={"seed": 0, "experiment": "x"},
        candidate_id="alpha=0.7",
        replicate=0,
        params={"alpha": 0.7},
        seed=0,
        warmup_uri="/s/x/warmup/rep0.pt",
        predictions_uri="/s/x/predictions/rep0/alpha=0.7.parquet",
        evidence_uri="/s/x/evidence/rep0/alpha=0.7.npz",
        result_uri="/s/x/results/alpha=0.7.rep0.json",
        pseudo_label_cache="/s/x/pseudo_labels",
        subset_ids=["a", "b"],
        use_gpu=False,
        gpu_memory_fraction=None,
        torch_threads=1,
        rung_round=1,
        vote_actor="hiast-vote-x",
        rung_predictions_uri="/s/x/rung/1/predictions/alpha=0.7.parquet",
        rung_evidence_uri=None,
    )
    return dataclasses.replace(loop, **changes)


def test_the_config_crosses_train_as_a_dict_and_arrives_whole() -> None:
    loop = _loop()
    config = to_train_config(loop)
    assert isinstance(config, dict)  # what Ray Train documents for train_loop_config
    # Ray pickles train_loop_config to every worker.
    assert from_train_config(cloudpickle.loads(cloudpickle.dumps(config))) == loop


def test_the_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _loop().seed = 1  # type: ignore[misc]


def test_a_config_that_is_not_a_loop_config_is_refused_naming_the_key() -> None:
    with pytest.raises(TypeError, match=r"train_loop_config\['loop'\]: expected a LoopConfig.*got dict"):
        from_train_config({"loop": dataclasses.asdict(_loop())})
    with pytest.raises(TypeError, match="got NoneType"):
        from_train_config({"candidate_id": "alpha=0.7"})  # the old untyped dict
