"""What DEV/IWCV add when a candidate's evidence file is written, against SND's per-image sums
(the other validator work done at write time), in the same process.

Probabilities of the evidence's shape (P sampled pixels per image, C classes, float16) for the
default job (60 subset and 60 source-val images) and for a paper-sized search (500 and 500, where
DEV draws at most ``max_pixels`` per domain and fold); the target domain is shifted so the
classifier has something to find. One torch-free process, median of ``--repeats``.

    python bench/bench_dev_cost.py [--repeats 3] [--out bench/results/dev_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from selection.validators.density import snd_row_entropies
from selection.validators.dev import dev_from_pixels
from selection.validators.evidence import EvidenceSettings

REPO = Path(__file__).resolve().parents[1]


def probs(rng: np.random.Generator, images: int, pixels: int, classes: int, shift: float) -> np.ndarray:
    logits = rng.normal(0.0, 1.5, (images, pixels, classes))
    logits[..., 0] += shift
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float16)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def case(name: str, target_images: int, source_images: int, repeats: int) -> dict:
    s = EvidenceSettings()
    rng = np.random.default_rng(0)
    c = 19
    source = probs(rng, source_images, s.n_pix, c, 2.0)
    labels = rng.integers(0, c, (source_images, s.n_pix)).astype(np.uint8)
    target = probs(rng, target_images, s.n_pix, c, 1.0)
    dev_s = median_seconds(lambda: dev_from_pixels(source, labels, target, seed=s.pixel_seed), repeats)
    snd_s = median_seconds(lambda: [snd_row_entropies(t, s.snd_temperature).sum() for t in target], repeats)
    result = dev_from_pixels(source, labels, target, seed=s.pixel_seed)
    return {
        "case": name,
        "target_images": target_images,
        "source_images": source_images,
        "dev_seconds": round(dev_s, 3),
        "snd_seconds": round(snd_s, 3),
        "dev_over_snd": round(dev_s / snd_s, 2),
        "pixels_weighted": result.pixels,
        "l2": result.l2,
        "eta": round(result.eta, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dev_cost.json")
    args = ap.parse_args()
    load = os.getloadavg()
    cases = [case("default job", 60, 60, args.repeats), case("paper-sized", 500, 500, args.repeats)]
    out = {
        "cases": cases,
        "load_before": [round(v, 2) for v in load],
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
