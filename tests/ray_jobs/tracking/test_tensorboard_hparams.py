"""The extra HParams event file: well-formed records, and F-mIoU visible in TensorBoard's view."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from tensorboardX.proto import event_pb2, plugin_hparams_pb2
from tensorboardX.record_writer import masked_crc32c

from ray_jobs.tracking import HPARAMS_EVENT_FILE, write_hparams

PARAMS = {"alpha": 0.3, "gamma": 8.0, "k": 3, "variant": "paper", "freeze_bn": True, "unset": None}


def read_events(path: Path) -> list[event_pb2.Event]:
    """Parse TFRecord frames independently of the writer, checking both CRCs of every record."""
    data = path.read_bytes()
    events, pos = [], 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        assert hcrc == masked_crc32c(header)
        payload = data[pos + 12 : pos + 12 + length]
        (pcrc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        assert pcrc == masked_crc32c(payload)
        events.append(event_pb2.Event.FromString(payload))
        pos += 16 + length
    return events


def hparams_content(events: list[event_pb2.Event]) -> dict[str, plugin_hparams_pb2.HParamsPluginData]:
    out = {}
    for ev in events:
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name == "hparams":
                out[v.tag] = plugin_hparams_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
    return out


def scalars(events: list[event_pb2.Event]) -> dict[str, float]:
    return {v.tag: v.simple_value for ev in events for v in ev.summary.value if v.HasField("simple_value")}


def test_records_carry_hparams_and_metrics(tmp_path: Path) -> None:
    write_hparams(str(tmp_path), PARAMS, {"f_miou": 0.8125, "true_miou": 0.4375})
    files = [p.name for p in tmp_path.iterdir()]
    assert files == [HPARAMS_EVENT_FILE]
    events = read_events(tmp_path / HPARAMS_EVENT_FILE)
    assert events[0].file_version == "brain.Event:2"
    content = hparams_content(events)
    start = content["_hparams_/session_start_info"].session_start_info
    assert start.hparams["alpha"].number_value == pytest.approx(0.3)
    assert start.hparams["k"].number_value == 3.0
    assert start.hparams["variant"].string_value == "paper"
    assert start.hparams["freeze_bn"].bool_value is True
    assert "unset" not in start.hparams
    exp = content["_hparams_/experiment"].experiment
    assert [m.name.tag for m in exp.metric_infos] == ["f_miou", "true_miou"]
    assert [m.display_name for m in exp.metric_infos] == ["F-mIoU (vs fusion)", "mIoU (true, audit)"]
    assert {h.name for h in exp.hparam_infos} == {"alpha", "gamma", "k", "variant", "freeze_bn"}
    assert content["_hparams_/session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS
    assert scalars(events) == {"f_miou": 0.8125, "true_miou": 0.4375}  # exact in float32


def test_failed_and_unlabelled_candidate(tmp_path: Path) -> None:
    # No target labels (true_miou None) and a crashed candidate: no fake values, status FAILURE,
    # but the same metric columns as every other trial.
    write_hparams(str(tmp_path), {"alpha": 0.9}, {"f_miou": float("nan"), "true_miou": None}, failed=True)
    events = read_events(tmp_path / HPARAMS_EVENT_FILE)
    content = hparams_content(events)
    assert content["_hparams_/session_end_info"].session_end_info.status == 2  # STATUS_FAILURE
    assert [m.name.tag for m in content["_hparams_/experiment"].experiment.metric_infos] == [
        "f_miou",
        "true_miou",
    ]
    assert scalars(events) == {}


def test_rewrite_replaces_file(tmp_path: Path) -> None:
    write_hparams(str(tmp_path), PARAMS, {"f_miou": 0.5})
    write_hparams(tmp_path.as_uri(), PARAMS, {"f_miou": 0.75})
    assert [p.name for p in tmp_path.iterdir()] == [HPARAMS_EVENT_FILE]
    assert scalars(read_events(tmp_path / HPARAMS_EVENT_FILE)) == {"f_miou": 0.75}


def _tune_like_trial(trial: Path, alpha: float) -> None:
    """What Tune's TBXLoggerCallback leaves: curves and an HParams session without F-mIoU."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    with SummaryWriter(logdir=str(trial)) as w:
        w.add_scalar("ray/tune/loss", alpha * 2, 1)
        for summary in hparams({"alpha": alpha}, {"ray/tune/loss": alpha * 2}):
            w.file_writer.add_summary(summary)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tensorboard's vendored html5lib
def test_tensorboard_hparams_view_shows_f_miou(tmp_path: Path) -> None:
    """TensorBoard's own HParams plugin, over trial directories that Tune already wrote to."""
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install tensorboard)")
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug import test as wtest
    from werkzeug import wrappers

    expected = {}
    for i, (alpha, f) in enumerate([(0.1, 0.75), (0.5, 0.8125), (0.9, 0.5)]):
        trial = tmp_path / f"cand_{i}_alpha={alpha}"
        _tune_like_trial(trial, alpha)
        write_hparams(str(trial), {"alpha": alpha}, {"f_miou": f})
        expected[alpha] = f

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    ctx = base_plugin.TBContext(
        logdir=str(tmp_path),
        multiplexer=mux,
        data_provider=data_provider.MultiplexerDataProvider(mux, str(tmp_path)),
    )
    apps = hparams_plugin.HParamsPlugin(ctx).get_plugin_apps()

    def call(route: str, body: dict[str, Any]) -> dict[str, Any]:
        def app(environ: dict[str, Any], start_response: Any) -> Any:
            context.set_in_environ(environ, context.RequestContext())
            return apps[route](environ, start_response)

        client = wtest.Client(app, wrappers.Response)
        resp = client.post(route, data=json.dumps(body), content_type="application/json")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return json.loads(resp.get_data(as_text=True))

    exp = call("/experiment", {"experimentName": ""})
    assert [m["name"]["tag"] for m in exp["metricInfos"]] == ["f_miou", "true_miou"]
    groups = call(
        "/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        },
    )
    seen = {
        g["hparams"]["alpha"]: {m["name"]["tag"]: m["value"] for m in g["metricValues"]}
        for g in groups["sessionGroups"]
    }
    assert seen.keys() == expected.keys()
    for alpha, f in expected.items():
        assert seen[alpha]["f_miou"] == pytest.approx(f)
