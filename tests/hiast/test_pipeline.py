"""CPU end-to-end: warm-up, self-training rounds, pseudo-label cache, prediction, evaluation.

Everything runs on synthscape at 32x64 with a width-8 model and a handful of iterations, so the
whole module takes seconds. The warm-up and the first round are module fixtures shared by tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import tiny_config

from hiast.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hiast.config import HIASTConfig
from hiast.data import build_dataset
from hiast.data.base import WithoutLabels
from hiast.data.synthscape import SYNTHSCAPE_CLASSES, SynthscapeDataset
from hiast.hpla import ClassIndex
from hiast.pipeline import RoundResult, evaluate, load_model, predict_labels, run_warmup, train_rounds
from hiast.pseudo_labels import generate_pseudo_labels, load_pseudo_labels, pseudo_label_key
from hiast.warmup import validate_warmup_checkpoint

pytestmark = pytest.mark.slow

METRICS = ("loss_ce", "loss_r_c", "loss_r_i", "loss_r_cst", "loss_total", "train_kept_ratio")


def _state(path: Path, key: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[key]


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _leftovers(folder: Path) -> list[str]:
    """Temporary files or folders left by an atomic write (checkpoints, pseudo-label folders)."""
    return sorted(str(p) for p in folder.rglob("*") if ".tmp" in p.name)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny convolutions gain nothing from a second thread; on a shared, loaded machine the
    # intra-op pool's spinning makes them several times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cfg() -> HIASTConfig:
    return tiny_config()


@pytest.fixture(scope="module")
def warm(cfg: HIASTConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_warmup(cfg, tmp_path_factory.mktemp("warm"), device="cpu")


@pytest.fixture(scope="module")
def run1(cfg: HIASTConfig, warm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One round with a shared pseudo-label cache; what on_round saw."""
    root = tmp_path_factory.mktemp("run1")
    seen: list[RoundResult] = []
    last = train_rounds(
        cfg, warm, root / "cand", device="cpu", pseudo_label_cache=root / "cache", on_round=seen.append
    )
    return {"root": root, "work": root / "cand", "cache": root / "cache", "last": last, "seen": seen}


# ---------------------------------------------------------------- warm-up
def test_warmup_checkpoint_loads(cfg: HIASTConfig, warm: Path) -> None:
    assert warm.name == "warmup.pt" and warm.is_file()
    ckpt = load_checkpoint(warm)
    assert ckpt["stage"] == "warmup" and ckpt["seed"] == cfg.seed
    assert HIASTConfig.model_validate(ckpt["config"]) == cfg
    model = load_model(warm)
    assert not model.training
    assert _same_state(model.state_dict(), ckpt["model"])
    assert validate_warmup_checkpoint(warm, cfg) == warm
    assert _leftovers(warm.parent) == []


def test_warmup_is_deterministic(cfg: HIASTConfig, warm: Path, tmp_path: Path) -> None:
    again = run_warmup(cfg, tmp_path / "a", device="cpu")
    assert _same_state(_state(again, "model"), _state(warm, "model"))
    other = run_warmup(cfg, tmp_path / "b", device="cpu", seed=1)
    assert not _same_state(_state(other, "model"), _state(warm, "model"))


def test_given_warmup_checkpoint_is_validated_and_reused(
    cfg: HIASTConfig, warm: Path, tmp_path: Path
) -> None:
    reuse = cfg.model_copy(update={"warmup": cfg.warmup.model_copy(update={"checkpoint": warm})})
    assert run_warmup(reuse, tmp_path, device="cpu") == warm
    assert not (tmp_path / "warmup.pt").exists()  # nothing trained


# ---------------------------------------------------------------- one round
def test_round_checkpoint_and_on_round(cfg: HIASTConfig, run1: dict) -> None:
    last, seen = run1["last"], run1["seen"]
    assert last == run1["work"] / "round1.pt" and last.is_file()
    assert [r.round for r in seen] == [1]
    res = seen[0]
    assert res.checkpoint == last
    for key in METRICS:
        assert math.isfinite(res.metrics[key]), key
    assert res.metrics["loss_ce"] > 0  # pixels were kept and trained on
    assert 0.0 <= res.metrics["pseudo_kept_ratio"] <= 1.0
    assert 0.0 <= res.metrics["train_kept_ratio"] <= 1.0
    assert res.metrics["round_seconds"] > 0
    assert len(res.thresholds) == cfg.data.num_classes
    assert all(0.0 < t <= 1.0 for t in res.thresholds)
    ckpt = load_checkpoint(last)
    assert ckpt["round"] == 1 and ckpt["thresholds"] == res.thresholds
    assert ckpt["metrics"] == res.metrics
    teacher, student = load_model(last), load_model(last, which="student")
    assert _same_state(teacher.state_dict(), ckpt["teacher"])
    assert _same_state(student.state_dict(), ckpt["student"])
    assert not _same_state(ckpt["teacher"], ckpt["student"])  # EMA lags the student
    assert _leftovers(run1["root"]) == []


def test_pseudo_label_folder_content(cfg: HIASTConfig, run1: dict) -> None:
    folders = list(run1["cache"].iterdir())
    assert len(folders) == 1 and folders[0].is_dir()
    folder = folders[0]
    meta = json.loads((folder / "meta.json").read_text())
    target = build_dataset(cfg.data.target, cfg.data)
    n = len(target)
    assert sorted(meta["ids"]) == target.ids  # every target image once, in the generation order
    assert meta["key"] == folder.name
    assert len(meta["thresholds"]) == cfg.data.num_classes
    assert meta["thresholds"] == run1["seen"][0].thresholds
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == [f"{i:06d}.png" for i in range(n)]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*pngs, "meta.json"])
    labels = [np.asarray(Image.open(folder / name)) for name in pngs]
    for lab in labels:
        assert lab.dtype == np.uint8 and lab.shape == tuple(cfg.data.synthscape.image_size)
        assert set(np.unique(lab).tolist()) <= {*range(cfg.data.num_classes), 255}
    # The class index and the statistics describe exactly these files.
    index = ClassIndex.from_dict(meta["class_index"])
    assert index == ClassIndex.from_labels(labels, cfg.data.num_classes)
    kept = sum(int((lab != 255).sum()) for lab in labels)
    assert sum(meta["stats"]["kept_pixels"]) == kept
    assert sum(meta["stats"]["predicted_pixels"]) == n * 32 * 64
    assert meta["stats"]["kept_ratio"] == pytest.approx(kept / (n * 32 * 64))
    pl = load_pseudo_labels(folder)
    assert pl.ids == meta["ids"] and len(pl) == n
    np.testing.assert_array_equal(pl.label(3), labels[3])
    assert _leftovers(run1["cache"]) == []


def test_same_seed_same_weights_other_seed_differs(
    cfg: HIASTConfig, warm: Path, run1: dict, tmp_path: Path
) -> None:
    again = train_rounds(cfg, warm, tmp_path / "again", device="cpu")
    other = train_rounds(cfg, warm, tmp_path / "other", device="cpu", seed=1)
    for key in ("student", "teacher"):
        assert _same_state(_state(again, key), _state(run1["last"], key)), key
        assert not _same_state(_state(other, key), _state(run1["last"], key)), key
    # Without a cache the pseudo-labels go beside the checkpoints, byte-identical to the cached ones.
    (mine,) = (tmp_path / "again").glob("pseudo_round1-*")
    (cached,) = run1["cache"].iterdir()
    assert mine.name == f"pseudo_round1-{cached.name}"
    for png in cached.glob("*.png"):
        assert (mine / png.name).read_bytes() == png.read_bytes()


def test_loader_workers_do_not_change_the_result(warm: Path, run1: dict, tmp_path: Path) -> None:
    cfg = tiny_config(**{"data.num_loader_workers": 1})
    last = train_rounds(cfg, warm, tmp_path, device="cpu", pseudo_label_cache=run1["cache"])
    assert _same_state(_state(last, "student"), _state(run1["last"], "student"))


# ---------------------------------------------------------------- resume
def test_resume_runs_only_the_remaining_rounds(warm: Path, run1: dict, tmp_path: Path) -> None:
    cfg2 = tiny_config(**{"selftrain.rounds": 2})
    round1_mtime = run1["last"].stat().st_mtime_ns
    seen: list[RoundResult] = []
    last = train_rounds(
        cfg2, warm, tmp_path / "resumed", device="cpu", resume_from=run1["last"], on_round=seen.append
    )
    assert [r.round for r in seen] == [2]
    assert last == tmp_path / "resumed" / "round2.pt" and load_checkpoint(last)["round"] == 2
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir() if p.suffix == ".pt") == ["round2.pt"]
    assert [p.name.split("-")[0] for p in (tmp_path / "resumed").glob("pseudo_round*")] == ["pseudo_round2"]
    assert run1["last"].stat().st_mtime_ns == round1_mtime  # round 1 was not redone
    load_model(last)
    # Resuming gives exactly what an uninterrupted two-round run gives.
    straight: list[RoundResult] = []
    full = train_rounds(cfg2, warm, tmp_path / "straight", device="cpu", on_round=straight.append)
    assert [r.round for r in straight] == [1, 2]
    for key in ("student", "teacher"):
        assert _same_state(_state(full, key), _state(last, key)), key


def test_resume_after_the_last_round_does_nothing(
    cfg: HIASTConfig, warm: Path, run1: dict, tmp_path: Path
) -> None:
    seen: list[RoundResult] = []
    out = train_rounds(cfg, warm, tmp_path, device="cpu", resume_from=run1["last"], on_round=seen.append)
    assert out == run1["last"] and seen == []
    assert not any(tmp_path.glob("round*.pt"))


# ---------------------------------------------------------------- pseudo-label cache
def test_cache_shared_across_lambda_and_k_but_not_alpha(cfg: HIASTConfig, warm: Path, run1: dict) -> None:
    cache = run1["cache"]
    (folder,) = cache.iterdir()
    before = (folder.stat().st_ino, (folder / "meta.json").stat().st_mtime_ns)
    for i, params in enumerate(({"lambda_i": 3.0}, {"k": 1})):
        cand = cfg.with_parameters(params)
        seen: list[RoundResult] = []
        train_rounds(
            cand, warm, run1["root"] / f"lam{i}", device="cpu", pseudo_label_cache=cache, on_round=seen.append
        )
        assert [p.name for p in cache.iterdir()] == [folder.name]  # same key, reused
        assert (folder.stat().st_ino, (folder / "meta.json").stat().st_mtime_ns) == before  # not rewritten
        assert seen[0].thresholds == run1["seen"][0].thresholds
        assert not any((run1["root"] / f"lam{i}").glob("pseudo_round*"))
    other = cfg.with_parameters({"alpha": 0.3})
    train_rounds(other, warm, run1["root"] / "alpha", device="cpu", pseudo_label_cache=cache)
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 2 and folder.name in names
    assert _leftovers(cache) == []


def test_pseudo_label_key_depends_on_what_it_should(cfg: HIASTConfig) -> None:
    key = pseudo_label_key(cfg, "digest", 1)
    assert key == pseudo_label_key(
        cfg.with_parameters({"lambda_i": 0.0, "lambda_c": 2.0, "k": 9}), "digest", 1
    )
    for changed in (
        pseudo_label_key(cfg.with_parameters({"alpha": 0.9}), "digest", 1),
        pseudo_label_key(cfg.with_parameters({"gamma": 1.0}), "digest", 1),
        pseudo_label_key(cfg.with_parameters({"beta": 0.5}), "digest", 1),
        pseudo_label_key(cfg, "other-digest", 1),
        pseudo_label_key(cfg, "digest", 2),
        pseudo_label_key(tiny_config(**{"data.synthscape.shift": 0.5}), "digest", 1),
    ):
        assert changed != key


# ---------------------------------------------------------------- prediction and evaluation
def test_predict_labels_uint8_maps_of_image_size(run1: dict, cfg: HIASTConfig) -> None:
    model = load_model(run1["last"])
    val = build_dataset(cfg.data.target_val, cfg.data)
    out = list(predict_labels(model, val, batch_size=3))
    assert [sid for sid, _ in out] == val.ids
    for _, lab in out:
        assert lab.dtype == np.uint8 and lab.shape == (32, 64)
        assert lab.max() < cfg.data.num_classes
    ids = [val.ids[2], val.ids[0]]
    picked = list(predict_labels(model, val, ids, size=(16, 32), with_confidence=True))
    assert [p[0] for p in picked] == ids
    for _, lab, conf in picked:
        assert lab.shape == conf.shape == (16, 32)
        assert conf.dtype == np.float16 and 0 < conf.min() and conf.max() <= 1
    # Batching does not change the maps.
    one_by_one = list(predict_labels(model, val, batch_size=1))
    for (_, a), (_, b) in zip(out, one_by_one, strict=True):
        np.testing.assert_array_equal(a, b)


def test_evaluate_miou_in_unit_interval(run1: dict, cfg: HIASTConfig) -> None:
    model = load_model(run1["last"])
    val = build_dataset(cfg.data.target_val, cfg.data)
    res = evaluate(model, val, num_classes=19, eval_classes=cfg.data.eval_classes)
    assert 0.0 <= res["miou"] <= 1.0
    assert len(res["per_class_iou"]) == 19
    present = set(np.unique(np.concatenate([val[i].label.ravel() for i in range(len(val))])).tolist())
    for c, iou in enumerate(res["per_class_iou"]):
        assert iou is None or 0.0 <= iou <= 1.0
        if c in present:
            assert iou is not None, c  # a class in the ground truth always has a union
    assert set(cfg.data.eval_classes) == set(SYNTHSCAPE_CLASSES)
    with pytest.raises(ValueError, match="labels hidden"):
        evaluate(model, WithoutLabels(val), num_classes=19)


# ---------------------------------------------------------------- batch norm
def _bn_buffers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def test_freeze_bn_keeps_running_stats_and_unfrozen_updates_them(
    warm: Path, run1: dict, tmp_path: Path
) -> None:
    start = _bn_buffers(_state(warm, "model"))
    assert start
    frozen = _bn_buffers(_state(run1["last"], "student"))
    assert _same_state(frozen, start)
    cfg = tiny_config(**{"selftrain.freeze_bn": False})
    last = train_rounds(cfg, warm, tmp_path, device="cpu", pseudo_label_cache=run1["cache"])
    moving = _bn_buffers(_state(last, "student"))
    changed = [k for k in start if not torch.equal(moving[k], start[k])]
    assert len(changed) == len(start), sorted(set(start) - set(changed))
    # The teacher copies the student's statistics (buffers are copied, not averaged).
    assert _same_state(_bn_buffers(_state(last, "teacher")), moving)


# ---------------------------------------------------------------- bad inputs
def test_empty_target_set_fails_early_with_its_name(
    cfg: HIASTConfig, warm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = SynthscapeDataset("target", "train", 0, (32, 64))
    with pytest.raises(ValueError, match=r"synthscape-target-train.*empty"):
        generate_pseudo_labels(
            load_model(warm), empty, cfg, tmp_path / "pl", order_seed=0, device=torch.device("cpu")
        )
    assert not (tmp_path / "pl").exists() and _leftovers(tmp_path) == []
    # Through train_rounds: no round is trained and no checkpoint written.
    import hiast.selftrain

    monkeypatch.setattr(hiast.selftrain, "build_dataset", lambda *a, **k: WithoutLabels(empty))
    with pytest.raises(ValueError, match=r"synthscape-target-train.*empty"):
        train_rounds(cfg, warm, tmp_path / "work", device="cpu")
    assert not any((tmp_path / "work").glob("round*.pt"))
    assert _leftovers(tmp_path) == []


def _fake_warmup(path: Path, cfg: HIASTConfig, **changes: object) -> Path:
    raw = cfg.model_dump(mode="json")
    for dotted, value in changes.items():
        section, field = dotted.split(".")
        raw[section][field] = value
    return save_checkpoint(path, model={}, config=raw, stage="warmup", seed=0)


def test_warmup_checkpoint_of_another_arch_or_class_count(cfg: HIASTConfig, tmp_path: Path) -> None:
    big = _fake_warmup(tmp_path / "resnet101.pt", cfg, **{"model.arch": "deeplab_v2"})
    with pytest.raises(ValueError, match=r"deeplab_v2 with 19 classes.*model\.arch") as e:
        validate_warmup_checkpoint(big, cfg)
    assert str(big) in str(e.value)
    nine = _fake_warmup(tmp_path / "nine.pt", cfg, **{"data.num_classes": 9, "data.eval_classes": None})
    with pytest.raises(ValueError, match=r"9 classes.*data\.num_classes"):
        validate_warmup_checkpoint(nine, cfg)
    # run_warmup validates a given checkpoint before using it.
    given = cfg.model_copy(update={"warmup": cfg.warmup.model_copy(update={"checkpoint": big})})
    with pytest.raises(ValueError, match="model.arch"):
        run_warmup(given, tmp_path / "out", device="cpu")
    # A round checkpoint has no "model" entry: not a warm-up checkpoint.
    save_checkpoint(tmp_path / "round.pt", student={}, teacher={}, config=cfg.model_dump(mode="json"))
    with pytest.raises(ValueError, match=r"round\.pt: not a warm-up checkpoint \(missing 'model'\)"):
        validate_warmup_checkpoint(tmp_path / "round.pt", cfg)


def test_warmup_checkpoint_of_another_width_is_rejected(cfg: HIASTConfig, warm: Path) -> None:
    wide = tiny_config(**{"model.width": 16})
    with pytest.raises(ValueError, match=r"model\.width"):
        validate_warmup_checkpoint(warm, wide)


def test_train_rounds_with_mismatched_warmup_names_the_file(warm: Path, tmp_path: Path) -> None:
    wide = tiny_config(**{"model.width": 16})
    with pytest.raises((ValueError, RuntimeError)) as e:
        train_rounds(wide, warm, tmp_path, device="cpu")
    assert str(warm) in str(e.value)


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_checkpoint_error_names_the_file(
    cfg: HIASTConfig, warm: Path, run1: dict, tmp_path: Path
) -> None:
    bad_round = _truncated(run1["last"], tmp_path / "round1.pt")
    bad_warm = _truncated(warm, tmp_path / "warmup.pt")
    for call in (
        lambda: load_model(bad_round),
        lambda: train_rounds(cfg, warm, tmp_path / "w1", device="cpu", resume_from=bad_round),
        lambda: train_rounds(cfg, bad_warm, tmp_path / "w2", device="cpu"),
        lambda: validate_warmup_checkpoint(bad_warm, cfg),
    ):
        with pytest.raises(CheckpointError, match="truncated") as e:
            call()
        assert str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_model(tmp_path / "absent.pt")
    assert not any(tmp_path.glob("w*/round*.pt"))


def test_resume_from_a_warmup_checkpoint_names_the_file(cfg: HIASTConfig, warm: Path, tmp_path: Path) -> None:
    with pytest.raises((ValueError, KeyError, RuntimeError)) as e:
        train_rounds(cfg, warm, tmp_path, device="cpu", resume_from=warm)
    assert str(warm) in str(e.value)
    assert not any(tmp_path.glob("round*.pt"))
