"""A hand-made results table and choice for the dashboard's pure functions: two sweeps, five
candidates, every number chosen so that the expected output can be worked out by hand.

Plain pandas and dicts in the shapes ``selection.report.inputs`` documents (candidates.parquet,
choice.json); nothing is computed by the selection code, so a test on these reads only the module
it tests. ``report_fixtures`` (one folder up) is the real selection's output, for whole pages.

==========  =====  =====  ======  ==============  =============  =========  ============  ======
candidate   alpha  gamma  status  f_miou__alpha   f_miou__gamma  true_miou  mean_entropy  notes
==========  =====  =====  ======  ==============  =============  =========  ============  ======
alpha=0.1   0.1    8      done    0.6             –              0.50       0.3
default     0.5    8      done    0.8 (pick)      0.7            0.55       0.2           in both
alpha=0.9   0.9    8      done    0.7             –              0.60       0.2           degenerate
gamma=2     0.5    2      done    –               0.75 (pick)    0.52       0.4
gamma=16    0.5    16     failed  –               –              –          –             OOM
==========  =====  =====  ======  ==============  =============  =========  ============  ======
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selection.report.inputs import Facts, read_facts

NAN = float("nan")
IDS = ["alpha=0.1", "default", "alpha=0.9", "gamma=2", "gamma=16"]
VOTED = IDS[:4]
FAILED_ID, FAILED_ERROR = "gamma=16", "RayTaskError: CUDA out of memory"
DEGENERATE_ID = "alpha=0.9"
AGREEMENT = np.array(
    [
        [1.0, 0.6, 0.4, 0.5],
        [0.6, 1.0, 0.8, 0.7],
        [0.4, 0.8, 1.0, 0.5],
        [0.5, 0.7, 0.5, 1.0],
    ]
)


def table() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "candidate_id": IDS,
            "sweep": ["alpha", "default", "alpha", "gamma", "gamma"],
            "sweeps": [["alpha"], ["alpha", "gamma"], ["alpha"], ["gamma"], ["gamma"]],
            "alpha": [0.1, 0.5, 0.9, 0.5, 0.5],
            "gamma": [8.0, 8.0, 8.0, 2.0, 16.0],
            "status": ["done", "done", "done", "done", "failed"],
            "error": [None, None, None, None, FAILED_ERROR],
            "f_miou": [0.6, 0.75, 0.7, 0.75, NAN],
            "f_miou__alpha": [0.6, 0.8, 0.7, NAN, NAN],
            "f_miou__gamma": [NAN, 0.7, NAN, 0.75, NAN],
            "true_miou": [0.50, 0.55, 0.60, 0.52, NAN],
            "mean_entropy": [0.3, 0.2, 0.2, 0.4, NAN],
            "degenerate_in": [[], [], ["alpha"], [], []],
            "per_class_iou": [[0.9, 0.5, NAN], [0.8, 0.6, NAN], [1.0, 0.0, NAN], [0.7, 0.4, NAN], None],
        }
    )
    for j, cid in enumerate(VOTED):
        df[f"agreement__{cid}"] = [*AGREEMENT[:, j], NAN]
    return df


_CHOICE: dict[str, Any] = {
    "parameters": {"alpha": 0.5, "gamma": 2.0},
    "candidate_id": None,
    "f_miou": None,
    "notes": ["gamma=16 failed before the vote"],
    "mode": "sweep",
    "score_used": "f_miou",
    "per_sweep": {
        "alpha": {
            "candidate_id": "default",
            "value": 0.5,
            "score_used": "f_miou",
            "f_miou": 0.8,
            "untrimmed_pick": "default",
            "degenerate": ["alpha=0.9"],
            "undecided_fraction": 0.125,
        },
        "gamma": {
            "candidate_id": "gamma=2",
            "value": 2.0,
            "score_used": "f_miou",
            "f_miou": 0.75,
            "untrimmed_pick": "default",
            "degenerate": [],
            "undecided_fraction": None,
        },
    },
    "centre_bound": ["alpha"],
    "centre_bias": {"alpha": {"sentence": "the pick is the centre of every window"}},
    "degenerate": ["alpha=0.9"],
    "trim_rule": "none",
    "subset": {"size": 4},
    "num_classes": 3,
    "rule": {"text": "f_miou", "description": "F-mIoU per sweep"},
    "confidence": {
        "level": "low",
        "reasons": ["alpha is centre-bound"],
        "groups": {"alpha": {"level": "low", "reasons": ["centre-bound"]}},
    },
}

CONFIG: dict[str, Any] = {
    "experiment": "tiny",
    "data": {"eval_classes": [0, 1]},
    "selection": {"mode": "sweep", "parameters": {"alpha": [0.1, 0.5, 0.9], "gamma": [2, 8, 16]}},
}


def choice() -> dict[str, Any]:
    return copy.deepcopy(_CHOICE)


def sweep_table() -> pd.DataFrame:
    """``sweeps/alpha.parquet`` as selection.sweeps writes it: ranks per validator and the rule."""
    return pd.DataFrame(
        {
            "candidate_id": ["alpha=0.1", "default", "alpha=0.9"],
            "alpha": [0.1, 0.5, 0.9],
            "is_default": [False, True, False],
            "picked": [False, True, False],
            "degenerate": [False, False, True],
            "rule__rank": [3.0, 1.0, 2.0],
            "f_miou": [0.6, 0.8, 0.7],
            "f_miou__rank": [3.0, 1.0, 2.0],
            "mean_entropy": [0.3, 0.2, 0.2],
            "mean_entropy__rank": [3.0, 1.0, 1.0],
            "snd": [1.0, 2.0, 3.0],  # a value without a rank column is not shown
            "true_miou": [0.50, 0.55, 0.60],
            "true_miou__rank": [3.0, 2.0, 1.0],
        }
    )


def facts(tbl: pd.DataFrame | None = None, ch: Any = "default", config: Any = "default", **kw: Any) -> Facts:
    return read_facts(
        table() if tbl is None else tbl,
        choice() if ch == "default" else ch,
        CONFIG if config == "default" else config,
        **kw,
    )


def write_experiment(root: Path, *, config: bool = True, sweeps: bool = True) -> Path:
    """An experiment folder as the job leaves it (candidates.parquet, choice.json, sweeps/,
    job_config.json), holding the tables above."""
    (root / "sweeps").mkdir(parents=True, exist_ok=True)
    table().to_parquet(root / "candidates.parquet")
    (root / "choice.json").write_text(json.dumps(choice()), encoding="utf-8")
    if sweeps:
        sweep_table().to_parquet(root / "sweeps" / "alpha.parquet")
    if config:
        (root / "job_config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    return root
