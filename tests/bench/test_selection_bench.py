"""The selection benchmark's regimes, work-folder records and landscape summary (bench/selection_bench)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from selection_bench.landscapes import (
    check_regime_folder,
    run_candidate_job,
    run_warmup_job,
    summarise_regime,
    summarise_sweep,
)
from selection_bench.layout import (
    BROKEN,
    FinishedCandidate,
    candidate_config,
    finished_candidates,
    load_regime,
    regime_candidates,
    regime_config,
)

from hiast.config import ConfigError
from ray_jobs.config import load_job_config

ROOT = Path(__file__).resolve().parents[2]

REGIMES = sorted((ROOT / "bench" / "regimes").glob("*.yaml"))


# ---------------------------------------------------------------- regimes and candidates
def test_there_are_at_least_three_regimes() -> None:
    assert len(REGIMES) >= 3, REGIMES


@pytest.mark.parametrize("path", REGIMES, ids=lambda p: p.stem)
def test_regime_file_is_a_full_documented_config_with_the_grid(path: Path) -> None:
    regime = load_regime(path)
    header = path.read_text().splitlines()[0]
    assert header.startswith("#") and len(header) > 20, "a regime documents itself in a header comment"
    params = regime.config.selection.parameters
    assert len(params["alpha"]) == 5
    for name in ("gamma", "lambda_i", "k"):
        assert len(params[name]) >= 3, name
    defaults = regime.config.parameters()
    for name, values in params.items():
        assert float(defaults[name]) in [float(v) for v in values], f"{name}: the default is a grid value"
    cands = regime_candidates(regime.config)
    assert sum(c.broken for c in cands) == len(BROKEN) >= 2
    assert len([c for c in cands if not c.broken]) == 1 + sum(len(v) - 1 for v in params.values())


def test_broken_candidates_change_only_what_they_say() -> None:
    cfg = load_job_config(None)
    by_id = {c.id: c for c in regime_candidates(cfg)}
    bn = candidate_config(cfg, by_id["broken:bn_updating"], seed=4)
    assert bn.selftrain.freeze_bn is False and bn.seed == 4
    assert bn.parameters() == cfg.parameters()
    a1 = candidate_config(cfg, by_id["broken:alpha=1,gamma=0"], seed=0)
    assert (a1.ias.alpha, a1.ias.gamma) == (1.0, 0.0)
    assert by_id["broken:alpha=1,gamma=0"].params["alpha"] == 1.0  # the scorer sees its parameters
    assert all(not by_id[b.id].sweeps for b in BROKEN)
    swept = candidate_config(cfg, by_id["alpha=0.3"], seed=1)
    assert swept.ias.alpha == 0.3 and swept.selftrain.freeze_bn is True
    assert by_id["default"].sweeps == tuple(cfg.selection.parameters)


def test_a_regime_without_a_sweep_is_refused(tmp_path) -> None:
    raw = yaml.safe_load((ROOT / "configs" / "synthscape.yaml").read_text())
    raw["selection"]["parameters"] = {}
    bad = tmp_path / "nosweep.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="nosweep.yaml: selection.mode must be 'sweep'"):
        load_regime(bad)


# ---------------------------------------------------------------- the landscape summary
def _cand(cid: str, seed: int, truth: float, param: str = "alpha", value: float = 0.5, broken: bool = False):
    return FinishedCandidate(
        regime="r",
        seed=seed,
        id=cid,
        checkpoint=Path("x"),
        params={param: value},
        sweeps=() if broken else (param,),
        broken=broken,
        truth=truth,
        source_val_miou=0.5,
        warmup_truth=0.4,
        record={"cpu_seconds_train": 1.0, "order": 0},
    )


def _sweep(table: dict[float, list[float]]) -> list[FinishedCandidate]:
    return [
        _cand("default" if v == 0.5 else f"alpha={v}", s, t, value=v)
        for v, truths in table.items()
        for s, t in enumerate(truths)
    ]


def test_a_paired_optimum_stands_clear_through_large_seed_offsets() -> None:
    # Seed offsets of 10 points move every candidate together; 0.7 wins in every seed by 0.01.
    offsets = [0.0, 0.10, -0.05]
    curve = {0.1: 0.40, 0.3: 0.42, 0.5: 0.43, 0.7: 0.44, 0.9: 0.41}
    cands = _sweep({v: [t + o for o in offsets] for v, t in curve.items()})
    sw = summarise_sweep("alpha", cands, [0, 1, 2])
    assert sw["optimum"]["value"] == 0.7 and sw["optimum"]["position"] == "interior"
    assert sw["clear"] is True
    assert sw["spread"] == pytest.approx(4.0)
    assert sw["gap_to_runner_up"] == pytest.approx(1.0)
    assert sw["paired_gap_min"] == pytest.approx(1.0) and sw["paired_gap_max"] == pytest.approx(1.0)
    assert sw["points"][0]["truth"]["min"] == pytest.approx(35.0)
    assert sw["points"][0]["truth"]["max"] == pytest.approx(50.0)


def test_an_optimum_one_seed_disagrees_with_or_ties_is_not_clear() -> None:
    disagree = _sweep({0.1: [0.40, 0.40, 0.44], 0.5: [0.42, 0.42, 0.41], 0.9: [0.41, 0.41, 0.40]})
    sw = summarise_sweep("alpha", disagree, [0, 1, 2])
    assert sw["optimum"]["value"] == 0.5 and sw["clear"] is False
    assert sw["best_per_seed"] == {0: "default", 1: "default", 2: "alpha=0.1"}
    tie = _sweep({0.1: [0.40, 0.41, 0.40], 0.9: [0.40, 0.40, 0.39]})
    sw = summarise_sweep("alpha", tie, [0, 1, 2])
    assert sw["optimum"]["value"] == 0.1 and sw["optimum"]["position"] == "low end" and sw["clear"] is False
    high = summarise_sweep("alpha", _sweep({0.1: [0.3], 0.9: [0.5]}), [0])
    assert high["optimum"]["position"] == "high end"
    assert high["clear"] is False  # one seed cannot tell an optimum from luck


def test_regime_summary_excludes_broken_candidates_from_spread_and_best() -> None:
    cands = _sweep({0.1: [0.40, 0.42], 0.5: [0.45, 0.47], 0.9: [0.43, 0.44]})
    cands += [_cand("broken:x", s, 0.10, broken=True) for s in (0, 1)]
    warm = {
        0: {"target_val_miou": 0.40, "source_val_miou": 0.6},
        1: {"target_val_miou": 0.42, "source_val_miou": 0.6},
    }
    r = summarise_regime("r", cands, warm)
    assert r["best"]["id"] == "default" and r["default_minus_warmup"] == pytest.approx(5.0)
    assert r["spread"] == pytest.approx(5.0)
    assert r["best_minus_warmup"] == pytest.approx(5.0)
    assert r["broken_minus_warmup"]["broken:x"] == pytest.approx(-31.0)
    assert list(r["sweeps"]) == ["alpha"]


# ---------------------------------------------------------------- records and resume
def _tiny_config(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "configs" / "synthscape.yaml").read_text())
    raw["data"]["synthscape"].update(
        image_size=[32, 64], n_source_train=8, n_source_val=4, n_target_train=8, n_target_val=4, cache=False
    )
    raw["data"].update(crop_size=[32, 64], source_crop_height=[24, 32], target_crop_height=[24, 32])
    raw["warmup"].update(source_iters=2, adversarial_iters=1, batch_size=2)
    raw["selftrain"].update(iters_per_round=2, batch_size=2, rounds=2)
    raw["selection"]["parameters"] = {"alpha": [0.1, 0.5]}
    path = tmp_path / "tiny.yaml"
    path.write_text("# tiny\n" + yaml.safe_dump(raw))
    return load_regime(path)


def _trained_alpha_candidate(tmp_path: Path):
    """The tiny regime's warm-up and its alpha=0.1 candidate, trained in ``tmp_path / "work"``."""
    regime = _tiny_config(tmp_path)
    work = tmp_path / "work"
    cfg_json = regime.config.model_dump(mode="json")
    spec = next(c for c in regime_candidates(regime.config) if c.id == "alpha=0.1")
    spec_json = {**spec.__dict__, "sweeps": list(spec.sweeps)}
    warm = run_warmup_job("tiny", cfg_json, 0, str(work))
    first = run_candidate_job("tiny", cfg_json, spec_json, 1, 0, str(work))
    return regime, work, cfg_json, spec_json, warm, first


def test_candidate_job_resumes_after_its_last_round_and_lists_as_finished(tmp_path) -> None:
    regime, work, cfg_json, spec_json, warm, first = _trained_alpha_candidate(tmp_path)
    assert warm["target_val_miou"] >= 0 and (work / "tiny" / "seed0" / "warmup.pt").is_file()
    cand = work / "tiny" / "seed0" / "cand" / "alpha=0.1"
    # Kept: round 1 (the early-stop stage's rung) and the final round.
    assert sorted(p.name for p in cand.glob("round*.pt")) == ["round1.pt", "round2.pt"]
    # Stopped after round 1: the record and the last round gone, round 1 present.
    (cand / "result.json").unlink()
    (cand / "round2.pt").unlink()
    from hiast.pipeline import train_rounds

    spec = next(c for c in regime_candidates(regime.config) if c.id == "alpha=0.1")
    cfg = candidate_config(regime.config, spec, 0)
    cfg1 = cfg.model_copy(update={"selftrain": cfg.selftrain.model_copy(update={"rounds": 1})})
    train_rounds(
        cfg1,
        work / "tiny" / "seed0" / "warmup.pt",
        cand,
        seed=0,
        pseudo_label_cache=work / "tiny" / "seed0" / "pseudo_cache",
    )
    again = run_candidate_job("tiny", cfg_json, spec_json, 1, 0, str(work))
    assert again["target_val_miou"] == pytest.approx(first["target_val_miou"], abs=1e-12)
    (listed,) = finished_candidates(work)
    assert (listed.id, listed.seed, listed.broken, listed.sweeps) == ("alpha=0.1", 0, False, ("alpha",))
    assert listed.truth == again["target_val_miou"] and listed.checkpoint == cand / "round2.pt"
    assert listed.config().ias.alpha == 0.1 and listed.config().seed == 0
    # A record whose checkpoint is gone is an error naming it, not a silent skip.
    (cand / "round2.pt").unlink()
    with pytest.raises(ValueError, match="round2.pt is missing"):
        finished_candidates(work)
    check_regime_folder(work, regime)
    assert regime_config(work, "tiny").selection.parameters == {"alpha": [0.1, 0.5]}
    rec = json.loads((cand / "result.json").read_text())
    assert rec["warmup_target_val_miou"] == warm["target_val_miou"] and len(rec["rounds"]) == 2


def test_lost_round_one_checkpoint_comes_back_only_if_reproduced(tmp_path) -> None:
    _, work, cfg_json, spec_json, _, _ = _trained_alpha_candidate(tmp_path)
    cand = work / "tiny" / "seed0" / "cand" / "alpha=0.1"
    from hiast.checkpoint import load_checkpoint

    before = load_checkpoint(cand / "round1.pt")["teacher"]
    (cand / "round1.pt").unlink()
    run_candidate_job("tiny", cfg_json, spec_json, 0, 0, str(work))
    after = load_checkpoint(cand / "round1.pt")["teacher"]
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not (cand / "round1-restore").exists()
    # A round 1 that does not reproduce the record is refused, not swapped in.
    rec = json.loads((cand / "result.json").read_text())
    rec["rounds"][0]["eval"]["target_val_miou"] += 1.0
    (cand / "result.json").write_text(json.dumps(rec))
    (cand / "round1.pt").unlink()
    with pytest.raises(RuntimeError, match="round 1 trained again gives"):
        run_candidate_job("tiny", cfg_json, spec_json, 0, 0, str(work))
    assert not (cand / "round1.pt").exists()


def test_requirement_checks_read_the_summary() -> None:
    from selection_bench.landscapes import check_requirements

    warm = {s: {"target_val_miou": 0.40, "source_val_miou": 0.6} for s in (0, 1)}
    helps = _sweep({0.1: [0.41, 0.42], 0.5: [0.43, 0.44], 0.9: [0.46, 0.47]})
    hurts = _sweep({0.1: [0.30, 0.31], 0.5: [0.38, 0.39], 0.9: [0.39, 0.35]})
    summary = {"up": summarise_regime("up", helps, warm), "down": summarise_regime("down", hurts, warm)}
    req = check_requirements(summary)
    up, down = req["regimes"]["up"], req["regimes"]["down"]
    assert (up["effect"], down["effect"]) == ("helps", "hurts")
    assert up["gain_ok"] is True and down["gain_ok"] is None  # the gain is required where it helps
    assert up["spread_ok"] is True and down["spread_ok"] is True
    assert up["alpha_optimum"]["position"] == "high end" and up["alpha_optimum"]["clear"] is True
    assert down["alpha_optimum"]["position"] == "interior" and down["alpha_optimum"]["clear"] is False
    assert req["alpha_positions"] == [1, 2] and req["alpha_positions_clear"] == [2]
    assert req["high_end_optimum_clear"] and req["interior_optimum"] and not req["interior_optimum_clear"]


def test_every_name_the_entry_point_imports_exists() -> None:
    # The stages import their modules lazily (inside main), where a moved or unexported name would
    # only fail when that stage runs.
    import ast
    import importlib

    tree = ast.parse((ROOT / "bench" / "bench_selection.py").read_text())
    wanted = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("selection_bench")
        for alias in node.names
    ]
    assert len(wanted) > 10
    missing = [f"{m}.{n}" for m, n in wanted if not hasattr(importlib.import_module(m), n)]
    assert missing == []
