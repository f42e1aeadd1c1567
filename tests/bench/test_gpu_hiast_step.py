"""bench/gpu_hiast_step.py is run on a lent GPU, where a broken import or config costs device time:
its CPU smoke mode runs here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_smoke_runs_on_cpu_and_trains_finitely(monkeypatch, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_gpu_hiast_step", BENCH / "gpu_hiast_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(sys, "argv", ["gpu_hiast_step.py"])
    assert mod.main(["--smoke", "--no-anchor"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    timed = [r for r in records if r.get("what", "").startswith("ours")]
    assert timed and all(r["finite"] and r["device"] == "cpu" for r in timed)
    assert records[-1]["what"] == "verdict" and records[-1]["smoke"] is True
