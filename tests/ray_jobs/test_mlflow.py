"""--mlflow-uri: the job's trials, scores and outputs in a real local MLflow store (SQLite),
read back with MLflow's own client; and the clear error when mlflow is not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray
from conftest import RayHead
from jobtools import write_config

from ray_jobs import select

EXPERIMENT = "mlflow-tiny"
ROUNDS = 2


def test_mlflow_uri_without_mlflow_fails_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now raises ImportError
    storage = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        select.main(["--storage", str(storage), "--mlflow-uri", f"sqlite:///{tmp_path}/m.db"])
    assert exit_info.value.code == 2
    assert "--mlflow-uri needs mlflow, which is not installed: pip install 'hiast-select[mlflow]'" in (
        capsys.readouterr().err
    )
    assert not ray.is_initialized() and not storage.exists()


class _Trial:
    """What MLflowLoggerCallback reads of a Tune trial: its config and its name."""

    def __init__(self, cid: str, replicate: int, alpha: float) -> None:
        self.config = {"candidate": {"candidate_id": cid, "replicate": replicate, "params": {"alpha": alpha}}}
        self.name = f"{cid}_rep{replicate}"

    def __str__(self) -> str:
        return self.name


@pytest.mark.slow  # mlflow import + a SQLite store: 14-45 s here, depending on the load
def test_final_results_reach_the_newest_run_of_each_trial(tmp_path: Path) -> None:
    """Ray's callback driven as Tune drives it (without a cluster), then the job's own vote."""
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'hiast-select[mlflow]')")
    from mlflow.tracking import MlflowClient
    from test_report_job import vote_with_two_replicates

    from ray_jobs.mlflow_results import log_final_results, mlflow_callback

    paths, candidates = vote_with_two_replicates(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    client.create_experiment("tiny", artifact_location=(tmp_path / "artifacts").as_uri())

    def search(callback_uses: int) -> None:
        callback = mlflow_callback(uri, "tiny", paths.root)
        callback.setup()
        for c in candidates[:callback_uses]:
            for r in range(2):
                trial = _Trial(c.id, r, c.params["alpha"])
                callback.log_trial_start(trial)
                for step in (1, 2):
                    callback.log_trial_result(step, trial, {"round": step, "training_iteration": step})
                callback.log_trial_end(trial)
        callback.on_experiment_end(trials=[])  # as Tune ends a search: waits for the queued calls

    search(len(candidates))
    search(1)  # a resumed job: the same summary run, a second run for the default's trials
    log_final_results(uri, "tiny", paths)

    table = pd.read_parquet(paths.candidates).set_index("candidate_id")
    runs = client.search_runs(client.get_experiment_by_name("tiny").experiment_id)
    (summary,) = [r for r in runs if r.data.tags.get("hiast_select.role") == "summary"]
    trials = [r for r in runs if r.data.tags.get("hiast_select.role") == "trial"]
    assert len(trials) == 2 * len(candidates) + 2
    for run in trials:
        cid, rep = run.data.params["candidate/candidate_id"], int(run.data.params["candidate/replicate"])
        assert run.data.tags["mlflow.parentRunId"] == summary.info.run_id
        newest = max(
            (t for t in trials if t.data.params["candidate/candidate_id"] == cid
             and t.data.params["candidate/replicate"] == str(rep)),
            key=lambda t: t.info.start_time,
        )  # fmt: skip
        if run.info.run_id != newest.info.run_id:
            assert "f_miou" not in run.data.metrics  # an abandoned run keeps only its rounds
            continue
        row = table.loc[cid]
        # The trial's own replicate where the job keeps one value per replicate.
        assert run.data.metrics["true_miou"] == pytest.approx(row[f"true_miou__rep{rep}"])
        assert run.data.metrics["f_miou"] == pytest.approx(row[f"f_miou__rep{rep}"])
        assert run.data.metrics["f_miou_trimmed"] == pytest.approx(row["f_miou_trimmed"])
        assert run.data.tags["hiast_select.status"] == "done"
    assert summary.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert artifacts == {"candidates.parquet", "choice.json", "dashboard.html"}


@pytest.mark.slow
def test_job_logs_trials_scores_and_outputs(ray_head: RayHead, tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'hiast-select[mlflow]')")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    # An experiment made beforehand (as teams do) keeps the artifacts in this test's folder; the
    # job must reuse it rather than make another.
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    config = write_config(
        tmp_path / "c.yaml",
        experiment=EXPERIMENT,
        **{"selection.parameters": {"alpha": [0.3, 0.5]}, "selftrain.rounds": ROUNDS},
    )
    storage = tmp_path / "results"
    proc = ray_head.run_select(config, storage, "--mlflow-uri", uri)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]

    root = storage / EXPERIMENT
    table = pd.read_parquet(root / "candidates.parquet").set_index("candidate_id")
    choice = json.loads((root / "choice.json").read_text())
    assert [e.name for e in client.search_experiments()].count(EXPERIMENT) == 1
    runs = client.search_runs([experiment_id])
    summary = [r for r in runs if r.data.tags.get("hiast_select.role") == "summary"]
    trials = [r for r in runs if r.data.tags.get("hiast_select.role") == "trial"]
    assert len(summary) == 1 and len(trials) == 2 == len(table)
    parent = summary[0]

    for run in trials:
        cid = run.data.params["candidate/candidate_id"]
        row = table.loc[cid]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.params["candidate/replicate"] == "0"
        assert float(run.data.params["candidate/params/alpha"]) == row["alpha"]
        # Per-round metrics from Ray's MLflowLoggerCallback: one point per round.
        rounds = [m.value for m in client.get_metric_history(run.info.run_id, "round")]
        assert sorted(set(rounds)) == [float(r) for r in range(1, ROUNDS + 1)]
        # Final scores from candidates.parquet, after the vote.
        assert run.data.metrics["f_miou"] == pytest.approx(row["f_miou"])
        assert run.data.metrics["f_miou_trimmed"] == pytest.approx(row["f_miou_trimmed"])
        assert run.data.metrics["true_miou"] == pytest.approx(row["true_miou"])
        assert run.data.metrics["source_val_miou"] == pytest.approx(row["source_val_miou"])
        assert run.data.tags["hiast_select.status"] == "done"

    assert parent.info.status == "FINISHED"
    assert parent.data.tags["hiast_select.candidate_id"] == str(choice["candidate_id"])
    assert {k: float(v) for k, v in parent.data.params.items()} == choice["parameters"]
    assert parent.data.metrics["f_miou"] == pytest.approx(choice["f_miou"])
    assert parent.data.tags["hiast_select.rule"] == choice["score_used"] == choice["rule"]["text"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {"candidates.parquet", "choice.json", "dashboard.html"}
    local = Path(client.download_artifacts(parent.info.run_id, "choice.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text()) == choice
