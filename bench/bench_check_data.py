"""What the dataset checks before a run cost: the default pass (every file's header, a few files
decoded) and a full decode, on a GTA5-layout tree of GTA5-sized files (1914x1052 RGB images, palette
labels) made in a temporary folder.

    python bench/bench_check_data.py [--pairs 1000] [--decode 20]

Copies of one pair make the tree (the files come from the page cache, as on a second run; a cold
disk or a network file system reads slower). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiast.config import DatasetSpec  # noqa: E402
from hiast.data.real import GTA5Dataset  # noqa: E402

H, W = 1052, 1914


def make_tree(root: Path, pairs: int) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    # Photo-like pixels compress like GTA5's frames; labels are blocks of Cityscapes labelIds.
    image = np.repeat(rng.integers(0, 256, (H, W // 2, 3), dtype=np.uint8), 2, axis=1)[:, :W]
    label = np.kron(rng.integers(0, 34, (H // 16 + 1, W // 16 + 1)), np.ones((16, 16)))[:H, :W]
    Image.fromarray(image).save(root / "images" / "00000.png")
    pal = Image.fromarray(label.astype(np.uint8), mode="P")
    pal.putpalette(list(range(256)) * 3)
    pal.save(root / "labels" / "00000.png")
    for n in range(1, pairs):
        shutil.copy(root / "images" / "00000.png", root / "images" / f"{n:05d}.png")
        shutil.copy(root / "labels" / "00000.png", root / "labels" / f"{n:05d}.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--decode", type=int, default=20, help="pairs decoded in full, one process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-check-data-") as d:
        root = Path(d) / "gta5"
        make_tree(root, args.pairs)
        start = time.perf_counter()
        ds = GTA5Dataset(DatasetSpec(name="gta5", root=root))
        listed = time.perf_counter()
        ds.verify()
        default = time.perf_counter()
        one = GTA5Dataset(DatasetSpec(name="gta5", root=root, limit=args.decode))
        one_start = time.perf_counter()
        for i in range(len(one)):
            one[i]  # what a full check does per pair: decode both, check sizes and ids
        per_pair = (time.perf_counter() - one_start) / len(one)
    report = {
        "what": "dataset_check",
        "pairs": args.pairs,
        "listing_and_pairing_s": round(listed - start, 3),
        "default_check_s": round(default - listed, 3),
        "full_decode_s_per_pair_one_core": round(per_pair, 4),
        "full_check_gta5_24966_pairs_cpu_minutes": round(per_pair * 24966 / 60, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
