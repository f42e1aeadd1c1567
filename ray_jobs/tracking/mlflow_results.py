"""The search in MLflow, for teams that already look there (optional: ``--mlflow-uri``).

* Per trial, one MLflow run made by Ray's own ``MLflowLoggerCallback``: the trial's config as
  parameters (flattened: ``candidate/candidate_id``, ``candidate/replicate``,
  ``candidate/params/<p>``, ...) and every result Tune receives, so the per-round metrics. Its
  calls run on a background thread (:mod:`ray_jobs.callbacks.mlflow_logger` says why).
* One summary run per experiment, the trials' parent (``mlflow.parentRunId``), made before the
  search starts and found again by its tags when a job is resumed.
* After the vote (:func:`log_final_results`): on each trial's run the candidate's final scores —
  the score columns of ``candidates.parquet`` (:func:`selection.report.score_columns`: F-mIoU,
  trimmed F-mIoU, the other label-free scores, ``true_miou`` when labels exist), taken from the
  trial's own replicate where the job keeps one per replicate — and its status and picks as tags;
  on the summary run the choice (parameters as params, its F-mIoU as a metric, the rule as a tag) and
  ``choice.json``, ``candidates.parquet``, ``dashboard.html`` as artifacts.

mlflow is imported only when asked for (``pip install 'hiast-select[mlflow]'``).
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import TYPE_CHECKING

import pandas as pd

from ray_jobs.storage import ExperimentPaths, fetch_file, read_bytes
from selection.report import as_names, finite, score_columns

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ray_jobs.callbacks.mlflow_logger import BackgroundMLflowLogger

__all__ = ["INSTALL_HINT", "mlflow_installed", "mlflow_callback", "log_final_results"]

INSTALL_HINT = "pip install 'hiast-select[mlflow]'"
ROLE_TAG = "hiast_select.role"  # "summary" or "trial"
ROOT_TAG = "hiast_select.experiment_root"  # the experiment folder: tells two searches of one name apart
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests the trial runs under the summary run
# How MLflowLoggerCallback names the trial config's keys (ray_jobs.search.tune_grid:
# {"candidate": spec}).
CANDIDATE_PARAM, REPLICATE_PARAM = "candidate/candidate_id", "candidate/replicate"


def mlflow_installed() -> bool:
    """Whether mlflow imports (asked only with --mlflow-uri, which needs the import anyway)."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def _client(tracking_uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _summary_run(client: MlflowClient, experiment_id: str, root: str) -> str | None:
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'summary'")
    # Compared here, not in the filter: a path may hold quotes.
    mine = [r for r in runs if r.data.tags.get(ROOT_TAG) == root]
    return max(mine, key=lambda r: r.info.start_time).info.run_id if mine else None


def mlflow_callback(tracking_uri: str, experiment: str, root: str) -> BackgroundMLflowLogger:
    """The Tune callback that logs every trial as a child of the experiment's summary run.

    Creates the MLflow experiment (named as the job's experiment) and the summary run if they do
    not exist yet, so a tracking URI that does not work fails here, before any training.
    """
    from ray_jobs.callbacks.mlflow_logger import BackgroundMLflowLogger

    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    parent = _summary_run(client, experiment_id, root)
    if parent is None:
        tags = {ROLE_TAG: "summary", ROOT_TAG: root}
        parent = client.create_run(experiment_id, run_name=f"{experiment}: selection", tags=tags).info.run_id
    else:  # a resumed job: the same summary run goes on
        client.update_run(parent, status="RUNNING")
    return BackgroundMLflowLogger(
        tracking_uri=tracking_uri,
        experiment_name=experiment,
        tags={PARENT_TAG: parent, ROLE_TAG: "trial", ROOT_TAG: root},
    )


def _trial_runs(client: MlflowClient, experiment_id: str, parent: str) -> dict[tuple[str, int], str]:
    """(candidate id, replicate) -> run id; a trial restarted by --resume has several runs: the newest."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'", page_token=token
        )
        runs += list(page)
        token = page.token
        if not token:
            break
    out: dict[tuple[str, int], tuple[int, str]] = {}
    for r in runs:
        key = (r.data.params.get(CANDIDATE_PARAM), r.data.params.get(REPLICATE_PARAM))
        if None in key:
            continue
        k = (str(key[0]), int(key[1]))
        if k not in out or r.info.start_time > out[k][0]:
            out[k] = (r.info.start_time, r.info.run_id)
    return {k: run_id for k, (_, run_id) in out.items()}


def _final_scores(row: pd.Series, replicate: int, names: list[str]) -> dict[str, float]:
    out = {}
    for name in names:
        per_replicate = f"{name}__rep{replicate}"
        value = finite(row[per_replicate] if per_replicate in row.index else row[name])
        if value is not None:
            out[name] = value
    return out


def log_final_results(tracking_uri: str, experiment: str, paths: ExperimentPaths) -> None:
    """After the final vote: scores on the trial runs, choice and outputs on the summary run."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    parent = _summary_run(client, experiment_id, paths.root)
    if parent is None:
        raise RuntimeError(
            f"MLflow at {tracking_uri}: no summary run for {paths.root} in experiment {experiment!r}"
        )
    choice = json.loads(read_bytes(paths.choice))
    now = int(time.time() * 1000)
    with tempfile.TemporaryDirectory(prefix="hiast-mlflow-") as tmp:
        outputs = [fetch_file(uri, tmp) for uri in (paths.candidates, paths.choice, paths.dashboard)]
        table = pd.read_parquet(outputs[0]).set_index("candidate_id", drop=False)
        names = [c.name for c in score_columns(table)]
        for (cid, replicate), run_id in _trial_runs(client, experiment_id, parent).items():
            if cid not in table.index:
                raise RuntimeError(
                    f"MLflow run {run_id} is for candidate {cid!r}, which {paths.candidates} lacks"
                )
            row = table.loc[cid]
            picks = ",".join(as_names(row["picked_in"])) if "picked_in" in row.index else ""
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _final_scores(row, replicate, names).items()],
                tags=[
                    RunTag("hiast_select.status", str(row["status"])),
                    RunTag("hiast_select.picked_in", picks),
                ],
            )
        chosen = choice.get("parameters") or {}
        score = finite(choice.get("f_miou"))
        client.log_batch(
            parent,
            # choice.json's f_miou is the picks' F-mIoU whatever the rule (a rule's text, with its
            # parentheses, is no valid metric name: it goes to a tag)
            metrics=[Metric("f_miou", score, now, 0)] if score is not None else [],
            params=[Param(k, str(v)) for k, v in chosen.items()],
            tags=[
                RunTag("hiast_select.candidate_id", str(choice.get("candidate_id"))),
                RunTag("hiast_select.rule", str(choice.get("score_used") or "f_miou")),
            ],
        )
        for path in outputs:
            client.log_artifact(parent, str(path))
    client.set_terminated(parent, status="FINISHED" if chosen else "FAILED")
