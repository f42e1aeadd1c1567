"""Ray's ``MLflowLoggerCallback`` with its MLflow calls moved off Tune's event loop.

Tune runs callbacks inline in its loop, and Ray's callback makes one MLflow request per metric:
on this project's 2-core machine, 1-3 s per result with a SQLite store. A Train-in-Tune trial
must not wait that long: when its Train run finishes while the loop is still busy with the
previous result, Ray 2.60 can deadlock the trial — the run's last report (passed on through
``TuneReportCallback``'s queue) and the function's end-of-training result meet in the trial's
one-slot result queue (``ray/train/_internal/session.py``, ``get_next``). Seen twice here with
Ray's callback as it is: both trials hung after their last round, and a stack dump of one showed
exactly that wait. So every call of Ray's own logging methods goes, in order, to one background
thread, and the experiment's end waits for it.

Imported only with ``--mlflow-uri``: importing Ray's MLflow integration imports mlflow.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.experiment import Trial

__all__ = ["BackgroundMLflowLogger"]

log = logging.getLogger("ray_jobs")


class BackgroundMLflowLogger(MLflowLoggerCallback):
    """``MLflowLoggerCallback`` (same arguments, same runs and values), logging on one thread.

    A failed MLflow call is logged with its traceback and counted; it does not stop the search
    (MLflow mirrors the results, the experiment folder holds them).
    """

    def setup(self, *args: Any, **kwargs: Any) -> None:
        super().setup(*args, **kwargs)
        self._calls: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue()
        self.failures = 0
        self._thread = threading.Thread(target=self._work, name="mlflow-logger", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            method, args = call
            try:
                method(*args)
            except Exception:
                self.failures += 1
                log.exception("MLflow: %s failed", method.__name__)
            finally:
                self._calls.task_done()
        self._calls.task_done()

    def log_trial_start(self, trial: Trial) -> None:
        self._calls.put((super().log_trial_start, (trial,)))

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        self._calls.put((super().log_trial_result, (iteration, trial, dict(result))))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._calls.put((super().log_trial_end, (trial, failed)))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.flush()
        super().on_experiment_end(trials, **info)

    def flush(self) -> None:
        """Wait until every queued MLflow call has been made."""
        self._calls.join()
        if self.failures:
            log.warning(
                "MLflow: %d logging call(s) failed (see above); the results folder is complete", self.failures
            )

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; the queue and thread are remade in setup().
        return {k: v for k, v in self.__dict__.items() if k not in {"_calls", "_thread"}}
