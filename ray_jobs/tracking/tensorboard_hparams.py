"""Put each candidate's F-mIoU into TensorBoard's HParams view.

Tune's TensorBoard logger already writes training curves and an HParams session per trial, but
F-mIoU only exists after every candidate has finished and been fused by majority vote, so it must
be added afterwards. ``write_hparams`` adds one extra event file to the trial directory with the
candidate's hyperparameters, an experiment summary that lists F-mIoU (and true mIoU) as metrics,
and those metrics as scalars.

Why the file is named ``events.out.tfevents.0000000000.hiast-hparams``: TensorBoard keeps only the
*first* summary metadata it reads for a tag within a run, and reads a run's event files in name
order. Tune's own file (``events.out.tfevents.<unix time>.<host>``) already carries
``_hparams_/experiment`` and ``_hparams_/session_start_info`` without F-mIoU; a file sorting after
it would be ignored for those tags (checked against TensorBoard 2.21, both the Python and the Rust
loader). The zero timestamp sorts first, so this file's metadata wins, and rewriting it replaces
the previous one instead of piling up files. A TensorBoard that was already running when the file
appeared reads it only after a restart.

Every trial should get the file, failed ones too (``failed=True``): TensorBoard takes the
experiment definition (which metric columns exist) from an arbitrary run, so all runs must agree.

The records are tensorboardX's own: ``tensorboardX.summary.hparams`` and ``scalar`` build them,
its ``EventsWriter`` frames them. Its API takes no metric display names and always ends a session
with success, so those two fields are set on the plugin data it built. The module stays in
``ray_jobs``: it exists because of how Tune's TensorBoard logger names and fills trial folders.
"""

from __future__ import annotations

import math
import posixpath
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import api_pb2, event_pb2, plugin_hparams_pb2, summary_pb2
from tensorboardX.summary import hparams, scalar

from selection import write_bytes_atomic

__all__ = ["HPARAMS_EVENT_FILE", "METRICS", "write_hparams"]

HPARAMS_EVENT_FILE = "events.out.tfevents.0000000000.hiast-hparams"

# Always declared, in this order, whatever a given candidate has: every trial's experiment summary
# must be identical (see the module docstring).
METRICS: dict[str, tuple[str, str]] = {
    "f_miou": (
        "F-mIoU (vs fusion)",
        "mIoU of the candidate's target predictions against the majority vote of all candidates",
    ),
    "true_miou": (
        "mIoU (true, audit)",
        "mIoU against target labels; audit only, never used to select",
    ),
}


def _hparam(value: Any) -> bool | str | float | None:
    """The value as tensorboardX shows it (bool, str or float); None for what it cannot show."""
    if value is None:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, str):
        return value
    try:
        x = float(value)  # ints, floats, numpy scalars
    except (TypeError, ValueError):
        return str(value)
    return x if math.isfinite(x) else None


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _edit(summary: summary_pb2.Summary, change: Callable[[plugin_hparams_pb2.HParamsPluginData], None]):
    """Change the HParams plugin data of a summary tensorboardX built (its API has no argument for
    metric display names or a session's end status)."""
    plugin = summary.value[0].metadata.plugin_data
    data = plugin_hparams_pb2.HParamsPluginData.FromString(plugin.content)
    change(data)
    plugin.content = data.SerializeToString()
    return summary


def _describe_metrics(data: plugin_hparams_pb2.HParamsPluginData) -> None:
    for info in data.experiment.metric_infos:
        info.display_name, info.description = METRICS.get(info.name.tag, (info.name.tag, ""))


def _failed(data: plugin_hparams_pb2.HParamsPluginData) -> None:
    data.session_end_info.status = api_pb2.STATUS_FAILURE


def write_hparams(
    trial_dir: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    *,
    failed: bool = False,
) -> None:
    """Write (or replace) the HParams event file of one candidate in its Tune trial directory.

    ``trial_dir`` is a local path or a URI (``s3://…``) of the trial's directory under the Tune
    experiment. ``params`` are the candidate's hyperparameters (numbers, strings, bools; None is
    skipped). ``metrics`` holds ``f_miou`` and, when target labels were available, ``true_miou``;
    missing or non-finite metrics are left out so the view shows an empty cell, not a fake 0.
    Other numeric metrics are written as scalars too and declared after F-mIoU and true mIoU.
    """
    now = time.time()
    metric_names = list(METRICS) + sorted(k for k in metrics if k not in METRICS)
    shown = {str(k): v for k, v in ((k, _hparam(v)) for k, v in params.items()) if v is not None}
    experiment, start, end = hparams(shown, dict.fromkeys(metric_names))
    summaries = [_edit(experiment, _describe_metrics), start]
    summaries += [
        scalar(name, value) for name in metric_names if (value := _finite(metrics.get(name))) is not None
    ]
    summaries.append(_edit(end, _failed) if failed else end)

    # tensorboardX frames the records; its file name carries the time, so the bytes are moved to
    # the fixed name (and to object storage) afterwards.
    with tempfile.TemporaryDirectory(prefix="hiast-hparams-") as tmp:
        writer = EventsWriter(str(Path(tmp) / "events"))
        for summary in summaries:
            writer.write_event(event_pb2.Event(wall_time=now, step=0, summary=summary))
        writer.close()
        (written,) = Path(tmp).iterdir()
        data = written.read_bytes()
    write_bytes_atomic(posixpath.join(trial_dir.rstrip("/"), HPARAMS_EVENT_FILE), data)
