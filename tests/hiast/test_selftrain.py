"""The training step keeps its running sums on the device: the same round metrics, no per-step sync.

The round metrics used to be Python floats summed step by step (``float(v)`` per loss term and
for the kept ratio, a host sync each). They are now summed on the device and read once per round;
these tests check the result against the per-step sums and that the reads no longer grow with the
number of iterations.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_config

import hiast.selftrain as selftrain
from hiast.config import HIASTConfig
from hiast.pipeline import run_warmup, train_rounds

pytestmark = pytest.mark.slow

# Tensor methods that copy a value to the host (and so wait for the device).
SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield run_warmup(tiny_config(), tmp_path_factory.mktemp("warm"), seed=0)
    finally:
        torch.set_num_threads(before)


def _round_metrics(cfg: HIASTConfig, warm: Path, work: Path) -> dict[str, float]:
    seen: list[dict[str, float]] = []
    train_rounds(cfg, warm, work, seed=0, on_round=lambda r: seen.append(r.metrics))
    return seen[0]


def test_round_metrics_equal_the_per_step_sums(
    warm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(**{"selftrain.iters_per_round": 4})
    steps: list[dict[str, float]] = []
    losses = selftrain.hiast_losses

    def recording(logits: torch.Tensor, label: torch.Tensor, *args: object, **kwargs: object):
        terms = losses(logits, label, *args, **kwargs)
        # What the step used to read back, one value at a time.
        steps.append(
            {f"loss_{k}": float(v.detach()) for k, v in terms.items()}
            | {"train_kept_ratio": float((label != 255).float().mean())}
        )
        return terms

    monkeypatch.setattr(selftrain, "hiast_losses", recording)
    metrics = _round_metrics(cfg, warm, tmp_path)
    assert len(steps) == 4
    for key in steps[0]:
        per_step = sum(s[key] for s in steps) / 4
        assert metrics[key] == pytest.approx(per_step, rel=1e-12, abs=1e-15), key
    # Not trivially equal: the terms moved over the round.
    assert len({s["loss_total"] for s in steps}) > 1


def _host_reads_in_selftrain(
    cfg: HIASTConfig, warm: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> Counter:
    """Host reads made from hiast/selftrain.py's own lines during one round (not the losses' checks)."""
    counts: Counter = Counter()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: object, _name: str = name, _orig=original, **kwargs: object):
            if sys._getframe(1).f_code.co_filename == selftrain.__file__:
                counts[_name] += 1
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    try:
        _round_metrics(cfg, warm, work)
    finally:
        monkeypatch.undo()
    return counts


def test_host_reads_do_not_grow_with_the_iterations(
    warm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = _host_reads_in_selftrain(tiny_config(), warm, tmp_path / "short", monkeypatch)
    long = _host_reads_in_selftrain(
        tiny_config(**{"selftrain.iters_per_round": 7}), warm, tmp_path / "long", monkeypatch
    )
    assert long == short, f"{short} with 3 iterations, {long} with 7"
    assert sum(short.values()) >= 1  # the round's own reads are seen: the count is live
