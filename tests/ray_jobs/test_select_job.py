"""The selection job end to end on CPU, submitted with ``ray job submit`` to a local head."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import RayHead
from jobtools import TINY_IDS, check_outputs

from selection.config import DEFAULT_RULE
from selection.validators import VALIDATORS

pytestmark = pytest.mark.slow


def test_job_writes_table_choice_and_dashboard(submitted: dict) -> None:
    experiment = submitted["experiment"]
    assert "succeeded" in submitted["output"]
    table, choice = check_outputs(experiment, TINY_IDS)
    assert (table["status"] == "done").all()
    # The default configuration is trained once although it belongs to the alpha sweep.
    assert len(list((experiment / "results").glob("*.json"))) == 3
    # Every validator the candidates' outputs allow (one replicate: all but seed agreement), the
    # configured rule (the paper's by default), every validator's pick and the confidence.
    evidence = sorted(p.name for p in (experiment / "evidence").iterdir())
    assert evidence == sorted(f"{cid}.npz" for cid in TINY_IDS)
    expected = set(VALIDATORS) - {"seed_agreement"}
    assert expected <= set(table.columns) and table.loc[:, sorted(expected)].notna().all().all()
    assert choice["schema_version"] == 5 and choice["rule"]["config"] == DEFAULT_RULE
    assert set(choice["picks"]["alpha"]) == expected | {"rule"}
    assert choice["picks"]["alpha"]["rule"] == choice["per_sweep"]["alpha"]["candidate_id"]
    assert choice["confidence"]["level"] in ("high", "low")
    assert len(choice["confidence"]["groups"]["alpha"]["half_picks"]) == 2
    # One source-val pass gives both the evidence's source-val mIoU and the reported metric.
    np.testing.assert_allclose(table["source_val_miou"], table["source_val_miou__rep0"])
    audit = pd.read_parquet(experiment / "audit.parquet")
    assert set(audit["score"]) == expected | {"rule", "centre", "random"}
    sweep = pd.read_parquet(experiment / "sweeps" / "alpha.parquet")
    assert sweep["candidate_id"].tolist() == ["alpha=0.3", "default", "alpha=0.7"]
    assert {"rule__rank", "f_miou__rank", "atc__rank", "true_miou__rank"} <= set(sweep.columns)
    assert "Rankings per sweep" in (experiment / "dashboard.html").read_text()
    # One Train run per trial, with its round checkpoints under the experiment.
    assert len(list((experiment / "train").iterdir())) == 3
    # The job's log (streamed back by `ray job submit`) names candidates by their parameters and
    # ends with the choice, its confidence and the outputs' place.
    output = submitted["output"]
    assert "alpha=0.3: round 1 of 2 done" in output
    summary = [
        line for line in output.splitlines() if line.startswith(("Choice: ", "Confidence: ", "Outputs: "))
    ]
    assert [line.split(":")[0] for line in summary] == ["Choice", "Confidence", "Outputs"]
    assert f"(candidate {choice['candidate_id']!r};" in summary[0]
    assert str(experiment) in summary[2]
    # The provisional vote ran while the third candidate was training (2 of 3 finished).
    assert f"running pick by {choice['rule']['text']}, 2 of 3 candidates finished" in output
    # Ray's own INFO chatter stays out of a normal run.
    assert "Reporting training result" not in output and "Started a local Ray instance" not in output
    # Tune's own per-trial files are there for TensorBoard, with F-mIoU added after the vote.
    trial_dirs = [p for p in experiment.iterdir() if p.name.startswith("cand_")]
    assert len(trial_dirs) == 3
    for d in trial_dirs:
        assert (d / "params.json").is_file()
        assert any(p.name.endswith("hiast-hparams") for p in d.iterdir())


def test_rerun_without_resume_refuses_before_ray_starts(submitted: dict, ray_head: RayHead) -> None:
    experiment = submitted["experiment"]
    proc = ray_head.run_select(submitted["config"], experiment.parent, timeout=120)
    assert proc.returncode == 2
    assert "--resume" in proc.stderr
    assert "Connecting to existing Ray cluster" not in proc.stderr
