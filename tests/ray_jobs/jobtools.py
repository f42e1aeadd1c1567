"""Plain helpers for the ray_jobs tests: the tiny config and what the injected faults record."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]

# The tiny search the tests run: 3 candidates (alpha sweep), 2 rounds of 4 iterations, 16 images.
TINY_CONFIG: dict[str, Any] = {
    "experiment": "tiny",
    "seed": 0,
    "data": {
        "num_classes": 19,
        "eval_classes": [0, 1, 2, 5, 7, 8, 10, 11, 13],
        "source": {"name": "synthscape", "domain": "source", "split": "train"},
        "target": {"name": "synthscape", "domain": "target", "split": "train"},
        "source_val": {"name": "synthscape", "domain": "source", "split": "val"},
        "target_val": {"name": "synthscape", "domain": "target", "split": "val"},
        "synthscape": {
            "image_size": [32, 64],
            "n_source_train": 16,
            "n_source_val": 8,
            "n_target_train": 16,
            "n_target_val": 8,
            "shift": 1.0,
            "seed": 0,
        },
        "crop_size": [32, 64],
        "source_crop_height": [24, 32],
        "target_crop_height": [24, 32],
    },
    "model": {"arch": "deeplab_v2_small", "width": 8},
    "warmup": {"source_iters": 15, "adversarial_iters": 5, "batch_size": 4, "lr": 2.0e-3},
    "ias": {"alpha": 0.5, "beta": 0.9, "gamma": 8.0},
    "hpla": {"enabled": True, "k": 3},
    "loss": {"lambda_i": 1.0, "lambda_c": 0.1, "lambda_cst": 0.5},
    "selftrain": {"rounds": 2, "iters_per_round": 4, "batch_size": 4, "lr": 5.0e-4, "tau": 0.99},
    # 16 images: the final vote fans out over two 8-image chunks and merges them.
    "selection": {"mode": "sweep", "parameters": {"alpha": [0.3, 0.5, 0.7]}, "subset_size": 16},
    "ray": {
        "num_workers": 1,
        "use_gpu": False,
        "cpus_per_worker": 1,
        "max_concurrent_trials": 2,
        "trial_max_failures": 1,
        "worker_max_failures": 1,
    },
}


def write_config(path: Path, **overrides: Any) -> Path:
    """TINY_CONFIG with dotted overrides (``{"ray.use_gpu": True}``) written as YAML."""
    cfg = json.loads(json.dumps(TINY_CONFIG))
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def multinode_overrides(submitted: dict) -> dict[str, Any]:
    """The tiny search on the multi-node cluster: one candidate per GPU slot, and the warm-up model of
    the single-node run (the same config and seed would train the same one: the warm-up is not what
    these tests are about, and it is the slowest step of their jobs)."""
    return {
        "ray.worker_resources": {"gpu_slot": 1},
        "warmup.checkpoint": str(submitted["experiment"] / "warmup" / "rep0" / "warmup.pt"),
    }


def training_starts(marker_dir: Path) -> list[dict]:
    """The training starts the fault wrapper recorded (one per Train run start, rank 0), oldest first.

    (raytest.faults.records does the same; this copy spares test modules Ray's import.)
    """
    return [json.loads(p.read_text()) for p in sorted((marker_dir / "starts").glob("*.json"))]


def reports_settled(marker_dir: Path, seconds: float = 1.5) -> bool:
    """No round was reported in the last ``seconds``: Train's controller (polling every 0.25 s in
    these jobs) has registered every reported round checkpoint, so a kill now loses none of them."""
    times = [json.loads(p.read_text())["time"] for p in (marker_dir / "rounds").glob("*.json")]
    return not times or time.time() - max(times) > seconds


PARAMETER_COLUMNS = ["alpha", "gamma", "lambda_i", "lambda_c", "lambda_cst", "k"]
TINY_IDS = {"default", "alpha=0.3", "alpha=0.7"}
# A model and data small enough for unit tests of the worker's outputs (no training).
TINY_MODEL = {
    "data.synthscape.image_size": [32, 64],
    "data.synthscape.n_source_train": 4,
    "data.synthscape.n_target_train": 6,
    "data.synthscape.n_source_val": 3,
    "data.synthscape.n_target_val": 2,
    "model.width": 8,
    "selection.parameters": {},
}


def file_names(fs: Any, folder: str) -> list[str]:
    """Names of the files directly in ``folder`` of a ``pyarrow.fs`` filesystem (none if it is absent)."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(Path(i.path).name for i in infos if i.type == pafs.FileType.File)


def check_outputs(
    experiment: Path | str, expected_ids: set[str], fs: Any = None
) -> tuple[pd.DataFrame, dict]:
    """The three outputs exist and agree with each other; returns (table, choice).

    ``fs``: a ``pyarrow.fs`` filesystem the experiment lives on (``experiment`` is then its path
    there, e.g. ``bucket/runs/tiny``); None for a local folder.
    """
    root = str(experiment)

    def read(name: str) -> bytes:
        if fs is None:
            return (Path(root) / name).read_bytes()
        with fs.open_input_stream(f"{root}/{name}") as f:
            return f.read()

    def exists(name: str) -> bool:
        if fs is None:
            return (Path(root) / name).is_file()
        import pyarrow.fs as pafs

        return fs.get_file_info(f"{root}/{name}").type == pafs.FileType.File

    table = pd.read_parquet(io.BytesIO(read("candidates.parquet")))
    choice = json.loads(read("choice.json"))
    page = read("dashboard.html").decode()
    assert set(table["candidate_id"]) == expected_ids
    for col in [*PARAMETER_COLUMNS, "sweep", "f_miou", "true_miou", "status"]:
        assert col in table.columns, col
    done = table[table["status"] == "done"]
    assert done["f_miou"].between(0, 1).all()
    assert done["true_miou"].between(0, 1).all()  # synthscape has target labels
    assert choice["parameters"] and choice["candidate_id"] in expected_ids
    assert choice["provisional"] is False
    assert "PROVISIONAL" not in page
    for cid in expected_ids:
        assert cid in page
        assert exists(f"predictions/{cid}.parquet") or cid in choice["failed"]
    return table, choice
