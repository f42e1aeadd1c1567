"""Loaders for the real datasets on disk: Cityscapes, GTA5, SYNTHIA-RAND-CITYSCAPES, Oxford RobotCar.

Each loader is a ``SegDataset`` built from a ``DatasetSpec``. Construction is cheap and strict: it
lists the folders (or reads the HIAST JSON list), sorts the ids, applies ``spec.limit`` and checks
that every selected image and label file exists and that the split is not empty, so a broken tree
fails before any training. File contents are read lazily in ``load(i)``, which checks them
(decodable, image and label of one size, label values inside the id map) and raises
``DatasetError`` naming the file.

``verify()`` is what a job runs before it trains (``ray_jobs.select`` preflight, ``python -m hiast
check-data``). By default it reads the header of every file (a few KB each: is it an image, are the
image and its label of one size, is the label single-channel where it must be) and decodes a few
files of the split in full (a label format or class map that does not fit shows in every file).
Decoding everything is what finds a file damaged past its header or one stray label value; for
GTA5's 25k pairs that is tens of CPU-minutes, so it is asked for (``full=True``, the jobs'
``--check-data``) and spread over the machine's cores. Otherwise such a file stops the run when it
is first read, naming the file.

Layouts (as each dataset's release ships them):
- Cityscapes: ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``; labels in
  ``gtFine/{split}/{city}/*_gtFine_{labelIds|labelTrainIds}.png``. A split without a
  ``gtFine/{split}`` folder is unlabeled (``has_labels`` False), as for a target training split
  shipped without annotations. Ids: ``aachen_000000_000019``.
- GTA5: ``images/NNNNN.png`` + ``labels/NNNNN.png`` (palette index = Cityscapes labelId). Pairing
  rule: every image needs ``labels/<same name>``, else an error naming it; labels without an image
  are ignored, and so are numbers missing from both folders (the released zips skip 25 ids, and a
  partial download of the image parts with all label parts is a normal setup). ``spec.split`` is
  not used (GTA5 ships no splits; take subsets with ``list_file`` or ``limit``).
- SYNTHIA: ``RGB/*.png`` + ``GT/LABELS/*.png`` (16-bit RGB, class id in channel 0), under ``root``
  or under ``root/RAND_CITYSCAPES``. Same pairing rule as GTA5; ``spec.split`` is not used.
- Oxford RobotCar (PatchAlign 9-class release): ``{split}/**/*.png``; the ``train`` split is
  unlabeled; other splits take labels from ``anno/<same relative name>`` when ``anno/`` exists.
  Ids: the path below the split folder with "/" -> "_" (``val/<seq>_<frame>.png`` -> ``<seq>_<frame>``).
  Always 9 classes (``spec.class_set`` is not consulted).

``class_set: robotcar9`` on Cityscapes, GTA5 or SYNTHIA maps the 19 trainIds to the 9 RobotCar
classes after the dataset's own map (the Cityscapes -> Oxford scenario).

``spec.list_file``: a HIAST JSON list, entries resolved against ``root``. An entry with an empty
``mask_name`` is unlabeled; if every entry is, ``has_labels`` is False and labels are None,
otherwise such entries get an all-255 label (as HIAST does).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from hiast.config import DatasetSpec
from hiast.data.base import IGNORE_INDEX, DatasetError, Sample, SegDataset
from hiast.data.classes import (
    CITYSCAPES19_TO_ROBOTCAR9,
    CITYSCAPES_NUM_LABELIDS,
    LABELID_TO_TRAINID,
    OXFORD_NUM_IDS,
    OXFORD_TO_ROBOTCAR9,
    SYNTHIA_NUM_IDS,
    SYNTHIA_TO_TRAINID,
)
from hiast.data.io import IdMap, check_same_size, image_header, read_image, read_json_list, read_label_ids

__all__ = ["CityscapesDataset", "GTA5Dataset", "SynthiaDataset", "RobotCarDataset"]

_MAX_LISTED = 5  # how many missing files an error names before summarising
# Files of a split decoded in full by a default verify(), spread over the split.
_SAMPLE = 4
# A full verify() of more items than this is spread over worker processes.
_PARALLEL_FROM = 64

log = logging.getLogger("hiast")


@dataclass(frozen=True)
class _Item:
    id: str
    image: Path
    label: Path | None


def _identity_table(num_classes: int) -> np.ndarray:
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[:num_classes] = np.arange(num_classes, dtype=np.uint8)
    return table


def _for_class_set(table: np.ndarray, class_set: str) -> np.ndarray:
    """Compose a raw-id -> trainId table with 19 -> 9 when the RobotCar classes are asked for."""
    return CITYSCAPES19_TO_ROBOTCAR9[table] if class_set == "robotcar9" else table


def _num_classes(class_set: str) -> int:
    return 9 if class_set == "robotcar9" else 19


class _FileDataset(SegDataset):
    """Image/label file pairs, read lazily; subclasses only discover the pairs."""

    def __init__(
        self,
        name: str,
        items: list[_Item],
        num_classes: int,
        id_map: IdMap,
        label_channel: int | None,
        limit: int | None,
        where: str,
    ) -> None:
        self.name = name
        items = sorted(items, key=lambda it: it.id)
        dupes = sorted({a.id for a, b in zip(items, items[1:], strict=False) if a.id == b.id})
        if dupes:
            raise DatasetError(f"{name}: several images share the id(s) {dupes[:_MAX_LISTED]}")
        if limit is not None:
            items = items[:limit]
        if not items:
            raise DatasetError(f"{name}: no images found; expected {where}")
        _check_exist(name, [it.image for it in items], "image")
        _check_exist(name, [it.label for it in items if it.label is not None], "label", items)
        self._items = items
        self.ids = [it.id for it in items]
        self.num_classes = num_classes
        self.has_labels = any(it.label is not None for it in items)
        self._id_map = id_map
        self._channel = label_channel

    def verify(self, *, full: bool = False, labels: bool = True) -> None:
        start = time.perf_counter()
        problems = [msg for it in self._items if (msg := self._header_problem(it, labels))]
        decoded = range(len(self._items)) if full else _spread(len(self._items), _SAMPLE)
        if not problems:
            problems = self._decode_problems(decoded, labels)
        if problems:
            shown = "\n  ".join(problems[:_MAX_LISTED])
            more = f"\n  and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
            raise DatasetError(f"{self.name}: {len(problems)} bad file(s):\n  {shown}{more}")
        log.info(
            "%s: %d %s checked (headers; %d decoded) in %.1fs",
            self.name,
            len(self._items),
            "images and labels" if labels and self.has_labels else "images",
            len(decoded),
            time.perf_counter() - start,
        )

    def _header_problem(self, it: _Item, labels: bool) -> str | None:
        """What is wrong with one pair, from the files' headers only; None when nothing is."""
        try:
            image = image_header(it.image)
            if not labels or it.label is None:
                return None
            label = image_header(it.label)
        except DatasetError as e:
            return str(e)
        if label.channels > 1 and self._channel is None:
            return (
                f"{it.label}: a label image must have one channel (grey or palette ids), this one has "
                f"{label.channels} ({label.mode}); is it a colour visualisation?"
            )
        if (image.width, image.height) != (label.width, label.height):
            return (
                f"size mismatch: image {it.image} is {image.width}x{image.height} (WxH) but label "
                f"{it.label} is {label.width}x{label.height}"
            )
        return None

    def _decode_problems(self, indices: Sequence[int], labels: bool) -> list[str]:
        if len(indices) < _PARALLEL_FROM or (os.cpu_count() or 1) < 2:
            return self._decode_some(indices, labels)
        workers = os.cpu_count() or 1
        chunks = [indices[k::workers] for k in range(workers)]
        # spawn, not fork: the caller may hold threads (torch's, Ray's) that a fork would copy.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = pool.map(self._decode_some, chunks, [labels] * workers)
            return sorted(msg for part in parts for msg in part)

    def _decode_some(self, indices: Sequence[int], labels: bool) -> list[str]:
        problems = []
        for i in indices:
            try:
                if labels:
                    self.load(i)
                else:
                    read_image(self._items[i].image)
            except DatasetError as e:
                problems.append(str(e))
        return problems

    def files(self, i: int) -> tuple[Path, Path | None]:
        """The image and label file of sample ``i`` (label None when unlabeled)."""
        it = self._items[i]
        return it.image, it.label

    def load(self, i: int) -> Sample:
        it = self._items[i]
        image = read_image(it.image)
        label = None
        if it.label is not None:
            raw = read_label_ids(it.label, self._channel)
            check_same_size(image, raw, it.image, it.label)
            label = self._id_map(raw, it.label)
        elif self.has_labels:  # an unlabeled entry in a partly labelled list: all ignore
            label = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        return Sample(it.id, image, label)


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


def _check_exist(name: str, paths: list[Path], kind: str, items: list[_Item] | None = None) -> None:
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return
    if items is not None:  # name the image each missing label belongs to
        owner = {it.label: it.image for it in items}
        shown = [f"{p} (for image {owner[p]})" for p in missing[:_MAX_LISTED]]
    else:
        shown = [str(p) for p in missing[:_MAX_LISTED]]
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    raise DatasetError(f"{name}: {len(missing)} {kind} file(s) not found: " + "; ".join(shown) + more)


def _root(spec: DatasetSpec) -> Path:
    if spec.root is None:
        raise DatasetError(f"{spec.name}: no root folder given")
    root = Path(spec.root)
    if not root.is_dir():
        raise DatasetError(f"{spec.name}: root folder {root} not found")
    return root


def _require_dir(path: Path, name: str, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{name}: folder {path} not found; expected {what}")
    return path


def _list_items(spec: DatasetSpec, root: Path, make_id: Callable[[PurePosixPath], str]) -> list[_Item]:
    assert spec.list_file is not None
    list_file = Path(spec.list_file)
    if not list_file.is_absolute() and not list_file.is_file():
        list_file = root / list_file  # a relative list name may also live in the dataset root
    items = []
    for image_name, mask_name in read_json_list(list_file):
        label = root / mask_name if mask_name else None
        items.append(_Item(make_id(PurePosixPath(image_name)), root / image_name, label))
    return items


def _pngs(folder: Path, pattern: str = "*.png") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _paired_by_name(name: str, image_dir: Path, label_dir: Path) -> list[_Item]:
    """Pair ``image_dir/X.png`` with ``label_dir/X.png``; a label is required for every image."""
    _require_dir(label_dir, name, "one label PNG per image, of the same file name")
    return [_Item(p.stem, p, label_dir / p.name) for p in _pngs(image_dir)]


class CityscapesDataset(_FileDataset):
    """Cityscapes fine annotations; labels mapped from labelIds or read as labelTrainIds."""

    _IMAGE_SUFFIX = "_leftImg8bit"

    def __init__(self, spec: DatasetSpec) -> None:
        root = _root(spec)
        name = f"cityscapes/{spec.split}"
        suffix = f"_gtFine_{spec.label_format}.png"
        if spec.label_format == "labelIds":
            id_map = IdMap.from_table(
                _for_class_set(LABELID_TO_TRAINID, spec.class_set),
                CITYSCAPES_NUM_LABELIDS,
                f"Cityscapes labelIds (0..{CITYSCAPES_NUM_LABELIDS - 1})",
            )
        else:
            id_map = IdMap.from_table(
                _for_class_set(_identity_table(19), spec.class_set), 19, "Cityscapes trainIds (0..18)"
            )
        if spec.list_file is not None:
            items = _list_items(spec, root, self._id_of)
            where = f"entries in {spec.list_file}"
        else:
            image_dir = _require_dir(
                root / "leftImg8bit" / spec.split, name, "leftImg8bit/<split>/<city>/*_leftImg8bit.png"
            )
            label_dir = root / "gtFine" / spec.split
            labelled = label_dir.is_dir()
            items = []
            for p in _pngs(image_dir, f"*/*{self._IMAGE_SUFFIX}.png"):
                sid = self._id_of(PurePosixPath(p.name))
                items.append(_Item(sid, p, label_dir / p.parent.name / (sid + suffix) if labelled else None))
            where = f"{image_dir}/<city>/*{self._IMAGE_SUFFIX}.png"
        super().__init__(name, items, _num_classes(spec.class_set), id_map, None, spec.limit, where)

    @classmethod
    def _id_of(cls, rel: PurePosixPath) -> str:
        stem = rel.stem
        return stem[: -len(cls._IMAGE_SUFFIX)] if stem.endswith(cls._IMAGE_SUFFIX) else stem


class GTA5Dataset(_FileDataset):
    """GTA5 ("Playing for Data"): palette-PNG labels whose index is the Cityscapes labelId."""

    def __init__(self, spec: DatasetSpec) -> None:
        root = _root(spec)
        name = "gta5"
        id_map = IdMap.from_table(
            _for_class_set(LABELID_TO_TRAINID, spec.class_set),
            CITYSCAPES_NUM_LABELIDS,
            f"GTA5 labels holding Cityscapes labelIds (0..{CITYSCAPES_NUM_LABELIDS - 1})",
        )
        if spec.list_file is not None:
            items = _list_items(spec, root, lambda rel: rel.stem)
            where = f"entries in {spec.list_file}"
        else:
            image_dir = _require_dir(root / "images", name, "images/NNNNN.png")
            items = _paired_by_name(name, image_dir, root / "labels")
            where = f"{image_dir}/*.png"
        super().__init__(name, items, _num_classes(spec.class_set), id_map, None, spec.limit, where)


class SynthiaDataset(_FileDataset):
    """SYNTHIA-RAND-CITYSCAPES: 16-bit RGB label PNGs, class id in channel 0."""

    def __init__(self, spec: DatasetSpec) -> None:
        root = _root(spec)
        name = "synthia"
        if not (root / "RGB").is_dir() and (root / "RAND_CITYSCAPES" / "RGB").is_dir():
            root = root / "RAND_CITYSCAPES"  # accept the archive's top folder as root too
        id_map = IdMap.from_table(
            _for_class_set(SYNTHIA_TO_TRAINID, spec.class_set),
            SYNTHIA_NUM_IDS,
            f"SYNTHIA class ids (0..{SYNTHIA_NUM_IDS - 1}) in channel 0",
        )
        if spec.list_file is not None:
            items = _list_items(spec, root, lambda rel: rel.stem)
            where = f"entries in {spec.list_file}"
        else:
            image_dir = _require_dir(root / "RGB", name, "RGB/NNNNNNN.png (root = .../RAND_CITYSCAPES)")
            items = _paired_by_name(name, image_dir, root / "GT" / "LABELS")
            where = f"{image_dir}/*.png"
        super().__init__(name, items, _num_classes(spec.class_set), id_map, 0, spec.limit, where)


class RobotCarDataset(_FileDataset):
    """Oxford RobotCar, 9-class PatchAlign release; anno PNGs carry the id in channel 0."""

    def __init__(self, spec: DatasetSpec) -> None:
        root = _root(spec)
        name = f"robotcar/{spec.split}"
        split = spec.split
        id_map = IdMap.from_table(
            OXFORD_TO_ROBOTCAR9, OXFORD_NUM_IDS, f"Oxford ids (0..{OXFORD_NUM_IDS - 1}) in channel 0"
        )

        def id_of(rel: PurePosixPath) -> str:
            parts = rel.with_suffix("").parts
            if len(parts) > 1 and parts[0] == split:
                parts = parts[1:]
            return "_".join(parts)

        if spec.list_file is not None:
            items = _list_items(spec, root, id_of)
            where = f"entries in {spec.list_file}"
        else:
            image_dir = _require_dir(root / split, name, f"{split}/**/*.png")
            anno_dir = root / "anno"
            # The PatchAlign train split has no annotations; anno/ holds the labelled splits' labels.
            labelled = split != "train" and anno_dir.is_dir()
            items = []
            for p in _pngs(image_dir, "**/*.png"):
                rel = p.relative_to(image_dir)
                sid = id_of(PurePosixPath(rel.as_posix()))
                items.append(_Item(sid, p, anno_dir / rel if labelled else None))
            where = f"{image_dir}/**/*.png"
        super().__init__(name, items, 9, id_map, 0, spec.limit, where)
