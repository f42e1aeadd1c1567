"""Class tables, id maps and palettes for Cityscapes, GTA5, SYNTHIA and Oxford RobotCar.

Each dataset has one table of rows; every lookup below is derived from those rows, so a class can
never be renamed in one place and forgotten in another. Id maps are 256-entry ``uint8`` lookup
tables applied by array indexing (``table[ids]``), with every unlisted id -> 255 (ignore) and
255 -> 255, so a map can also be applied to an already-mapped label that carries ignore pixels.

Sources: cityscapesScripts ``helpers/labels.py`` for the Cityscapes rows; the SYNTHIA-RAND-CITYSCAPES
README and the DAFormer/HIAST converters for SYNTHIA; Seg-Uncertainty ``robot_list/info.json`` and
HIAST's Oxford loader for the RobotCar 9 classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hiast.data.base import IGNORE_INDEX

__all__ = [
    "CityscapesClass",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_NUM_LABELIDS",
    "CITYSCAPES19_NAMES",
    "CITYSCAPES19_PALETTE",
    "CITYSCAPES19_CLASSES",
    "LABELID_TO_TRAINID",
    "TRAINID_TO_LABELID",
    "SynthiaClass",
    "SYNTHIA_CLASSES",
    "SYNTHIA_NUM_IDS",
    "SYNTHIA_TO_TRAINID",
    "OxfordClass",
    "OXFORD_CLASSES",
    "OXFORD_NUM_IDS",
    "OXFORD_TO_ROBOTCAR9",
    "ROBOTCAR9_NAMES",
    "ROBOTCAR9_PALETTE",
    "ROBOTCAR9_CLASSES",
    "CITYSCAPES19_TO_ROBOTCAR9",
    "LABELID_TO_ROBOTCAR9",
    "MIOU16_CLASSES",
    "MIOU13_CLASSES",
    "SYNTHSCAPE_CLASSES",
    "class_names",
    "class_palette",
    "colorize",
]


class CityscapesClass(NamedTuple):
    name: str
    id: int  # value in *_gtFine_labelIds.png (and in GTA5's palette-index labels); -1 never stored
    train_id: int  # 0..18 for the 19 evaluated classes, 255 for everything else
    category: str
    ignore_in_eval: bool  # True exactly when train_id == 255
    color: tuple[int, int, int]  # cityscapesScripts colour (trainId rows: the evaluation palette)


# cityscapesScripts' table, in its order. 'license plate' (id -1, trainId -1 upstream) is kept for
# completeness with train_id 255: the ignore value this project uses everywhere.
CITYSCAPES_CLASSES: tuple[CityscapesClass, ...] = (
    CityscapesClass("unlabeled", 0, 255, "void", True, (0, 0, 0)),
    CityscapesClass("ego vehicle", 1, 255, "void", True, (0, 0, 0)),
    CityscapesClass("rectification border", 2, 255, "void", True, (0, 0, 0)),
    CityscapesClass("out of roi", 3, 255, "void", True, (0, 0, 0)),
    CityscapesClass("static", 4, 255, "void", True, (0, 0, 0)),
    CityscapesClass("dynamic", 5, 255, "void", True, (111, 74, 0)),
    CityscapesClass("ground", 6, 255, "void", True, (81, 0, 81)),
    CityscapesClass("road", 7, 0, "flat", False, (128, 64, 128)),
    CityscapesClass("sidewalk", 8, 1, "flat", False, (244, 35, 232)),
    CityscapesClass("parking", 9, 255, "flat", True, (250, 170, 160)),
    CityscapesClass("rail track", 10, 255, "flat", True, (230, 150, 140)),
    CityscapesClass("building", 11, 2, "construction", False, (70, 70, 70)),
    CityscapesClass("wall", 12, 3, "construction", False, (102, 102, 156)),
    CityscapesClass("fence", 13, 4, "construction", False, (190, 153, 153)),
    CityscapesClass("guard rail", 14, 255, "construction", True, (180, 165, 180)),
    CityscapesClass("bridge", 15, 255, "construction", True, (150, 100, 100)),
    CityscapesClass("tunnel", 16, 255, "construction", True, (150, 120, 90)),
    CityscapesClass("pole", 17, 5, "object", False, (153, 153, 153)),
    CityscapesClass("polegroup", 18, 255, "object", True, (153, 153, 153)),
    CityscapesClass("traffic light", 19, 6, "object", False, (250, 170, 30)),
    CityscapesClass("traffic sign", 20, 7, "object", False, (220, 220, 0)),
    CityscapesClass("vegetation", 21, 8, "nature", False, (107, 142, 35)),
    CityscapesClass("terrain", 22, 9, "nature", False, (152, 251, 152)),
    CityscapesClass("sky", 23, 10, "sky", False, (70, 130, 180)),
    CityscapesClass("person", 24, 11, "human", False, (220, 20, 60)),
    CityscapesClass("rider", 25, 12, "human", False, (255, 0, 0)),
    CityscapesClass("car", 26, 13, "vehicle", False, (0, 0, 142)),
    CityscapesClass("truck", 27, 14, "vehicle", False, (0, 0, 70)),
    CityscapesClass("bus", 28, 15, "vehicle", False, (0, 60, 100)),
    CityscapesClass("caravan", 29, 255, "vehicle", True, (0, 0, 90)),
    CityscapesClass("trailer", 30, 255, "vehicle", True, (0, 0, 110)),
    CityscapesClass("train", 31, 16, "vehicle", False, (0, 80, 100)),
    CityscapesClass("motorcycle", 32, 17, "vehicle", False, (0, 0, 230)),
    CityscapesClass("bicycle", 33, 18, "vehicle", False, (119, 11, 32)),
    CityscapesClass("license plate", -1, 255, "vehicle", True, (0, 0, 142)),
)

# Ids 0..33 can appear in a labelIds PNG (or a GTA5 label); anything else means a wrong file.
CITYSCAPES_NUM_LABELIDS = 1 + max(c.id for c in CITYSCAPES_CLASSES)


def _lut(pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """256-entry uint8 lookup table: listed ids -> value, every other id (and 255) -> 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for src, dst in pairs:
        if 0 <= src < 256:
            table[src] = dst
    table.flags.writeable = False  # shared module constant: nobody may patch it in place
    return table


def _by_train_id(rows: Sequence[CityscapesClass]) -> list[CityscapesClass]:
    # cityscapesScripts builds trainId -> label from the reversed list, so the first-defined row of a
    # trainId wins; with 255 excluded each of 0..18 has exactly one row anyway.
    first: dict[int, CityscapesClass] = {}
    for row in rows:
        if row.train_id != IGNORE_INDEX:
            first.setdefault(row.train_id, row)
    return [first[t] for t in sorted(first)]


_CS19_ROWS = _by_train_id(CITYSCAPES_CLASSES)
assert [r.train_id for r in _CS19_ROWS] == list(range(19))

CITYSCAPES19_NAMES: tuple[str, ...] = tuple(r.name for r in _CS19_ROWS)
CITYSCAPES19_PALETTE: np.ndarray = np.array([r.color for r in _CS19_ROWS], dtype=np.uint8)
CITYSCAPES19_PALETTE.flags.writeable = False
CITYSCAPES19_CLASSES: list[int] = list(range(19))
LABELID_TO_TRAINID: np.ndarray = _lut([(r.id, r.train_id) for r in CITYSCAPES_CLASSES])
# The way back, for results in the Cityscapes benchmark's format (labelIds): each trainId to its
# row's id. Ignore (255) becomes 0, "unlabeled": 255 is no labelId, and the benchmark's evaluator
# counts an ignored-class prediction on a valid pixel as a miss of that pixel's class.
TRAINID_TO_LABELID: np.ndarray = _lut([(r.train_id, r.id) for r in _CS19_ROWS] + [(IGNORE_INDEX, 0)])


class SynthiaClass(NamedTuple):
    id: int  # class id in channel 0 (R) of the 16-bit GT/LABELS PNGs
    name: str
    train_id: int  # Cityscapes trainId, 255 = ignored


# SYNTHIA-RAND-CITYSCAPES README ids. Terrain, truck and train are mapped to trainIds 9/14/16 in the
# public dicts but never occur in SYNTHIA (DAFormer's note); mapping them to 255 makes that explicit
# and keeps a stray pixel from creating a class the evaluation (mIoU-16) does not count.
SYNTHIA_CLASSES: tuple[SynthiaClass, ...] = (
    SynthiaClass(0, "void", 255),
    SynthiaClass(1, "sky", 10),
    SynthiaClass(2, "building", 2),
    SynthiaClass(3, "road", 0),
    SynthiaClass(4, "sidewalk", 1),
    SynthiaClass(5, "fence", 4),
    SynthiaClass(6, "vegetation", 8),
    SynthiaClass(7, "pole", 5),
    SynthiaClass(8, "car", 13),
    SynthiaClass(9, "traffic sign", 7),
    SynthiaClass(10, "pedestrian", 11),
    SynthiaClass(11, "bicycle", 18),
    SynthiaClass(12, "motorcycle", 17),
    SynthiaClass(13, "parking-slot", 255),
    SynthiaClass(14, "road-work", 255),
    SynthiaClass(15, "traffic light", 6),
    SynthiaClass(16, "terrain", 255),
    SynthiaClass(17, "rider", 12),
    SynthiaClass(18, "truck", 255),
    SynthiaClass(19, "bus", 15),
    SynthiaClass(20, "train", 255),
    SynthiaClass(21, "wall", 3),
    SynthiaClass(22, "lanemarking", 255),  # ignore, not road: as in DAFormer and HIAST
)
SYNTHIA_NUM_IDS = 1 + max(c.id for c in SYNTHIA_CLASSES)
SYNTHIA_TO_TRAINID: np.ndarray = _lut([(c.id, c.train_id) for c in SYNTHIA_CLASSES])


class OxfordClass(NamedTuple):
    id: int  # class id in channel 0 of the anno PNGs
    robotcar9: int  # 0..8, 255 = ignored


# The PatchAlign "Oxford_Robot_ICCV19" release. Seg-Uncertainty's info.json enumerates ids 0..33
# (all others -> 255); only these thirteen ids carry one of the nine classes.
_OXFORD_MAPPED = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 10: 7, 11: 8, 12: 8, 13: 8, 14: 8, 17: 8}
OXFORD_NUM_IDS = 34
OXFORD_CLASSES: tuple[OxfordClass, ...] = tuple(
    OxfordClass(i, _OXFORD_MAPPED.get(i, IGNORE_INDEX)) for i in range(OXFORD_NUM_IDS)
)
OXFORD_TO_ROBOTCAR9: np.ndarray = _lut([(c.id, c.robotcar9) for c in OXFORD_CLASSES])

ROBOTCAR9_NAMES: tuple[str, ...] = (
    "sky", "person", "two-wheel", "automobile", "sign", "light", "building", "sidewalk", "road",
)  # fmt: skip
ROBOTCAR9_PALETTE: np.ndarray = np.array(
    [
        (70, 130, 180),
        (220, 20, 60),
        (119, 11, 32),
        (0, 0, 142),
        (220, 220, 0),
        (250, 170, 30),
        (70, 70, 70),
        (244, 35, 232),
        (128, 64, 128),
    ],
    dtype=np.uint8,
)
ROBOTCAR9_PALETTE.flags.writeable = False
ROBOTCAR9_CLASSES: list[int] = list(range(9))

# Cityscapes source for the Cityscapes -> Oxford scenario (HIAST's __id_map): the nine classes by
# Cityscapes trainId; wall, fence, pole, vegetation, terrain and train have no Oxford counterpart.
_CS19_TO_RC9_BY_NAME = {
    "road": "road",
    "sidewalk": "sidewalk",
    "building": "building",
    "traffic light": "light",
    "traffic sign": "sign",
    "sky": "sky",
    "person": "person",
    "rider": "person",
    "car": "automobile",
    "truck": "automobile",
    "bus": "automobile",
    "motorcycle": "two-wheel",
    "bicycle": "two-wheel",
}
CITYSCAPES19_TO_ROBOTCAR9: np.ndarray = _lut(
    [(CITYSCAPES19_NAMES.index(a), ROBOTCAR9_NAMES.index(b)) for a, b in _CS19_TO_RC9_BY_NAME.items()]
)
LABELID_TO_ROBOTCAR9: np.ndarray = CITYSCAPES19_TO_ROBOTCAR9[LABELID_TO_TRAINID]
LABELID_TO_ROBOTCAR9.flags.writeable = False

# SYNTHIA evaluation lists (Cityscapes trainIds): mIoU-16 drops terrain, truck and train; mIoU-13
# ("mIoU*") also drops wall, fence and pole. Averaged as a plain NaN-aware mean over the list.
MIOU16_CLASSES: list[int] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]
MIOU13_CLASSES: list[int] = [c for c in MIOU16_CLASSES if c not in (3, 4, 5)]
# The nine Cityscapes trainIds the synthscape generator draws (see configs/synthscape.yaml).
SYNTHSCAPE_CLASSES: list[int] = [0, 1, 2, 5, 7, 8, 10, 11, 13]


def class_names(class_set: str) -> tuple[str, ...]:
    """Names in class-index order for ``"cityscapes19"`` or ``"robotcar9"``."""
    try:
        return {"cityscapes19": CITYSCAPES19_NAMES, "robotcar9": ROBOTCAR9_NAMES}[class_set]
    except KeyError:
        raise KeyError(f"unknown class set {class_set!r}; known: cityscapes19, robotcar9") from None


def class_palette(class_set: str) -> np.ndarray:
    """(C, 3) uint8 colours in class-index order for ``"cityscapes19"`` or ``"robotcar9"``."""
    try:
        return {"cityscapes19": CITYSCAPES19_PALETTE, "robotcar9": ROBOTCAR9_PALETTE}[class_set]
    except KeyError:
        raise KeyError(f"unknown class set {class_set!r}; known: cityscapes19, robotcar9") from None


def colorize(
    label: np.ndarray, palette: np.ndarray, ignore_color: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """RGB uint8 (H, W, 3) picture of a class-id map; ids past the palette (255) get ``ignore_color``.

    Raises ValueError for a non-integer map or ids above 255 (not a label map).
    """
    label = np.asarray(label)
    if label.dtype.kind not in "ui":
        raise ValueError(f"colorize needs integer class ids, got dtype {label.dtype}")
    pal = np.asarray(palette, dtype=np.uint8)
    if pal.ndim != 2 or pal.shape[1] != 3 or not 0 < len(pal) <= 255:
        raise ValueError(f"palette must be (C, 3) with 1 <= C <= 255, got shape {pal.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label ids must lie in 0..255, got {label.min()}..{label.max()}")
    lut = np.empty((256, 3), dtype=np.uint8)
    lut[:] = ignore_color
    lut[: len(pal)] = pal
    return lut[label.astype(np.uint8)]
