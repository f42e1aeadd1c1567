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
from jobtools import TINY_IDS, check_outputs, write_config

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
    from vote_fixtures import vote_with_two_replicates

    from ray_jobs.tracking import log_final_results, mlflow_callback

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
def test_job_with_a_failed_candidate_logs_trials_scores_and_outputs(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """One search, two replicates, alpha=0.7 failing at every start: the failure is reported, the
    others still vote (seed agreement too), and MLflow holds every trial, failed ones included.
    Also the DDP path: two Train workers per candidate, half a CPU each, two candidates at once."""
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
        **{
            "selftrain.rounds": ROUNDS,
            "selection.replicates": 2,
            "ray.trial_max_failures": 0,
            "ray.worker_max_failures": 0,
            "ray.num_workers": 2,
            "ray.cpus_per_worker": 0.5,
        },
    )
    storage = tmp_path / "results"
    proc = ray_head.run_select(
        config, storage, "--mlflow-uri", uri, faults={"fail_candidates": ["alpha=0.7"]}
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    root = storage / EXPERIMENT

    # The error reaches the console, by the candidate's name; the summary still closes the output.
    assert "alpha=0.7 [rep 0]: FAILED: RuntimeError: candidate 'alpha=0.7': failure injected" in proc.stderr
    assert proc.stdout.splitlines()[-3].startswith("Failed: alpha=0.7")
    table, choice = check_outputs(root, TINY_IDS)
    rows = table.set_index("candidate_id")
    assert rows.loc["alpha=0.7", "status"] == "failed"
    assert "failure injected" in rows.loc["alpha=0.7", "error"]
    assert pd.isna(rows.loc["alpha=0.7", "f_miou"])
    assert choice["failed"] == ["alpha=0.7"]
    assert any("alpha=0.7" in n and "failed" in n for n in choice["notes"])
    assert choice["parameters"]["alpha"] in (0.3, 0.5)
    done = ("default", "alpha=0.3")
    for cid in done:
        assert rows.loc[cid, "status"] == "done"
        assert rows.loc[cid, "replicates"] == 2
        assert 0 <= rows.loc[cid, "seed_agreement"] <= 1
        assert 0 <= rows.loc[cid, "true_miou__rep1"] <= 1
        assert 0 <= rows.loc[cid, "f_miou__rep1"] <= 1  # replicate 1's own vote
        assert (root / "predictions" / "rep1" / f"{cid}.parquet").is_file()
    # Two independent warm-ups, one per replicate.
    assert len(list((root / "warmup").iterdir())) == 2

    assert [e.name for e in client.search_experiments()].count(EXPERIMENT) == 1
    runs = client.search_runs([experiment_id])
    summary = [r for r in runs if r.data.tags.get("hiast_select.role") == "summary"]
    trials = [r for r in runs if r.data.tags.get("hiast_select.role") == "trial"]
    assert len(summary) == 1 and len(trials) == 2 * len(TINY_IDS)
    parent = summary[0]
    for run in trials:
        cid, rep = run.data.params["candidate/candidate_id"], int(run.data.params["candidate/replicate"])
        row = rows.loc[cid]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert float(run.data.params["candidate/params/alpha"]) == row["alpha"]
        assert run.data.tags["hiast_select.status"] == row["status"]
        if cid not in done:
            assert run.info.status == "FAILED" and "f_miou" not in run.data.metrics
            continue
        assert run.info.status == "FINISHED"
        # Per-round metrics from Ray's MLflowLoggerCallback: one point per round.
        rounds = [m.value for m in client.get_metric_history(run.info.run_id, "round")]
        assert sorted(set(rounds)) == [float(r) for r in range(1, ROUNDS + 1)]
        # Final scores from candidates.parquet, after the vote: the trial's own replicate's where
        # the job keeps one value per replicate.
        assert run.data.metrics["f_miou"] == pytest.approx(row[f"f_miou__rep{rep}"])
        assert run.data.metrics["true_miou"] == pytest.approx(row[f"true_miou__rep{rep}"])
        assert run.data.metrics["f_miou_trimmed"] == pytest.approx(row["f_miou_trimmed"])

    assert parent.info.status == "FINISHED"
    assert parent.data.tags["hiast_select.candidate_id"] == str(choice["candidate_id"])
    assert {k: float(v) for k, v in parent.data.params.items()} == choice["parameters"]
    assert parent.data.metrics["f_miou"] == pytest.approx(choice["f_miou"])
    assert parent.data.tags["hiast_select.rule"] == choice["score_used"] == choice["rule"]["text"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {"candidates.parquet", "choice.json", "dashboard.html"}
    local = Path(client.download_artifacts(parent.info.run_id, "choice.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text()) == choice
