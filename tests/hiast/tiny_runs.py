"""The tiny end-to-end run the hiast tests share: synthscape at 32x64, a width-8 model and a
handful of iterations, so a warm-up and a round take seconds on one CPU core."""

from __future__ import annotations

import json

from hiast.config import HIASTConfig, load_config

TINY_RUN: dict[str, object] = {
    "data.synthscape.image_size": [32, 64],
    "data.crop_size": [32, 64],
    "data.source_crop_height": [24, 32],
    "data.target_crop_height": [24, 32],
    "data.synthscape.n_source_train": 16,
    "data.synthscape.n_target_train": 8,
    "data.synthscape.n_source_val": 4,
    "data.synthscape.n_target_val": 4,
    "warmup.source_iters": 4,
    "warmup.adversarial_iters": 2,
    "warmup.batch_size": 2,
    "selftrain.rounds": 1,
    "selftrain.iters_per_round": 3,
    "selftrain.batch_size": 2,
    "model.width": 8,
    # A barely trained generator is never confident: start IAS low so pseudo-labels keep pixels.
    "ias.init_threshold": 0.2,
}


def tiny_config(**overrides: object) -> HIASTConfig:
    """The tiny run's config with dotted-key overrides."""
    return load_config(None, {**TINY_RUN, **overrides})


def tiny_cli_sets(*extra: str) -> list[str]:
    """The tiny run as the CLI's ``--set key=value`` arguments, then ``extra`` ones."""
    out: list[str] = []
    for s in (*(f"{k}={json.dumps(v)}" for k, v in TINY_RUN.items()), *extra):
        out += ["--set", s]
    return out
