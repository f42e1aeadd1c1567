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
"""

from __future__ import annotations

import math
import posixpath
import struct
import time
from collections.abc import Mapping
from typing import Any

from tensorboardX.proto import api_pb2, event_pb2, plugin_hparams_pb2, summary_pb2
from tensorboardX.record_writer import masked_crc32c

from selection.filesystem import write_bytes_atomic

__all__ = ["HPARAMS_EVENT_FILE", "METRICS", "write_hparams", "encode_records"]

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

_PLUGIN = "hparams"
_EXPERIMENT_TAG = "_hparams_/experiment"
_SESSION_START_TAG = "_hparams_/session_start_info"
_SESSION_END_TAG = "_hparams_/session_end_info"


def _plugin_summary(tag: str, data: plugin_hparams_pb2.HParamsPluginData) -> summary_pb2.Summary:
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=_PLUGIN, content=data.SerializeToString()
        )
    )
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta)])


def _hparam_value(value: Any) -> tuple[str, Any] | None:
    """(field of the hparams Value proto, value); None for values TensorBoard cannot show."""
    if value is None:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "bool_value", bool(value)
    if isinstance(value, str):
        return "string_value", value
    try:
        x = float(value)  # ints, floats, numpy scalars
    except (TypeError, ValueError):
        return "string_value", str(value)
    return ("number_value", x) if math.isfinite(x) else None


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def encode_records(events: list[event_pb2.Event]) -> bytes:
    """TFRecord framing of serialized events, as TensorBoard reads them (length, CRCs, payload)."""
    out = bytearray()
    for event in events:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        out += header + struct.pack("<I", masked_crc32c(header)) + data
        out += struct.pack("<I", masked_crc32c(data))
    return bytes(out)


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
    step = 0
    metric_names = list(METRICS) + sorted(k for k in metrics if k not in METRICS)

    hparam_infos = []
    start = plugin_hparams_pb2.SessionStartInfo(start_time_secs=now)
    for name, raw in params.items():
        typed = _hparam_value(raw)
        if typed is None:
            continue
        field, value = typed
        setattr(start.hparams[str(name)], field, value)
        dtype = {
            "number_value": api_pb2.DATA_TYPE_FLOAT64,
            "string_value": api_pb2.DATA_TYPE_STRING,
            "bool_value": api_pb2.DATA_TYPE_BOOL,
        }[field]
        hparam_infos.append(api_pb2.HParamInfo(name=str(name), type=dtype))

    metric_infos = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(tag=name),
            display_name=METRICS.get(name, (name, ""))[0],
            description=METRICS.get(name, ("", ""))[1],
        )
        for name in metric_names
    ]
    experiment = api_pb2.Experiment(
        name="hiast-select",
        description="label-free selection: F-mIoU against the majority vote",
        time_created_secs=now,
        hparam_infos=hparam_infos,
        metric_infos=metric_infos,
    )
    end = plugin_hparams_pb2.SessionEndInfo(
        status=api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS, end_time_secs=now
    )

    events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
    for summary in (
        _plugin_summary(_EXPERIMENT_TAG, plugin_hparams_pb2.HParamsPluginData(experiment=experiment)),
        _plugin_summary(_SESSION_START_TAG, plugin_hparams_pb2.HParamsPluginData(session_start_info=start)),
    ):
        events.append(event_pb2.Event(wall_time=now, step=step, summary=summary))
    for name in metric_names:
        value = _finite(metrics.get(name))
        if value is None:
            continue
        scalar = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=value)])
        events.append(event_pb2.Event(wall_time=now, step=step, summary=scalar))
    events.append(
        event_pb2.Event(
            wall_time=now,
            step=step,
            summary=_plugin_summary(
                _SESSION_END_TAG, plugin_hparams_pb2.HParamsPluginData(session_end_info=end)
            ),
        )
    )
    target = posixpath.join(trial_dir.rstrip("/"), HPARAMS_EVENT_FILE)
    write_bytes_atomic(target, encode_records(events))
