"""Class tables and id maps against the facts written out by hand (shared/reference/datasets.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hiast.data import classes as C

# The published maps, typed out independently of classes.py's tables.
LABELID_TO_TRAINID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                      24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
SYNTHIA_TO_TRAINID = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 10, 10: 11, 17: 12,
                      8: 13, 19: 15, 12: 17, 11: 18}  # fmt: skip
OXFORD_TO_9 = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 10: 7, 11: 8, 12: 8, 13: 8, 14: 8, 17: 8}
CS19_TO_9 = {0: 8, 1: 7, 2: 6, 6: 5, 7: 4, 10: 0, 11: 1, 12: 1, 13: 3, 14: 3, 15: 3, 17: 2, 18: 2}
CS19_PALETTE = [(128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
                (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
                (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                (0, 80, 100), (0, 0, 230), (119, 11, 32)]  # fmt: skip
RC9_PALETTE = [(70, 130, 180), (220, 20, 60), (119, 11, 32), (0, 0, 142), (220, 220, 0),
               (250, 170, 30), (70, 70, 70), (244, 35, 232), (128, 64, 128)]  # fmt: skip


def expected_lut(mapping: dict[int, int]) -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut


@pytest.mark.parametrize(
    ("table", "mapping"),
    [
        (C.LABELID_TO_TRAINID, LABELID_TO_TRAINID),
        (C.SYNTHIA_TO_TRAINID, SYNTHIA_TO_TRAINID),
        (C.OXFORD_TO_ROBOTCAR9, OXFORD_TO_9),
        (C.CITYSCAPES19_TO_ROBOTCAR9, CS19_TO_9),
    ],
    ids=["labelId->trainId", "synthia->trainId", "oxford->9", "cs19->9"],
)
def test_lookup_tables_match_published_maps(table: np.ndarray, mapping: dict[int, int]) -> None:
    assert table.dtype == np.uint8 and table.shape == (256,)
    np.testing.assert_array_equal(table, expected_lut(mapping))
    assert table[255] == 255  # applying a map to an already-ignored pixel keeps it ignored


def test_tables_are_read_only() -> None:
    for table in (C.LABELID_TO_TRAINID, C.SYNTHIA_TO_TRAINID, C.OXFORD_TO_ROBOTCAR9,
                  C.CITYSCAPES19_TO_ROBOTCAR9, C.LABELID_TO_ROBOTCAR9, C.CITYSCAPES19_PALETTE):  # fmt: skip
        with pytest.raises(ValueError):
            table[0] = 1


def test_synthia_absent_and_void_classes_are_ignored() -> None:
    for sid in (0, 13, 14, 16, 18, 20, 22):  # void, parking, road-work, terrain, truck, train, lanes
        assert C.SYNTHIA_TO_TRAINID[sid] == 255
    # What SYNTHIA can produce is exactly what mIoU-16 scores.
    produced = {int(v) for v in C.SYNTHIA_TO_TRAINID if v != 255}
    assert produced == set(C.MIOU16_CLASSES)


def test_labelid_to_robotcar9_is_the_composition() -> None:
    ids = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(
        C.LABELID_TO_ROBOTCAR9[ids], C.CITYSCAPES19_TO_ROBOTCAR9[C.LABELID_TO_TRAINID[ids]]
    )
    assert C.LABELID_TO_ROBOTCAR9[24] == C.LABELID_TO_ROBOTCAR9[25] == 1  # person and rider -> person
    assert C.LABELID_TO_ROBOTCAR9[21] == 255  # vegetation has no RobotCar class


def test_cityscapes_table_rows() -> None:
    ids = [r.id for r in C.CITYSCAPES_CLASSES]
    assert len(set(ids)) == len(ids) == 35
    assert C.CITYSCAPES_NUM_LABELIDS == 34
    for row in C.CITYSCAPES_CLASSES:
        assert row.ignore_in_eval == (row.train_id == 255), row
    assert C.CITYSCAPES19_NAMES[:3] == ("road", "sidewalk", "building")
    assert C.CITYSCAPES19_NAMES[18] == "bicycle" and len(C.CITYSCAPES19_NAMES) == 19


def test_palettes_and_names() -> None:
    np.testing.assert_array_equal(C.CITYSCAPES19_PALETTE, np.array(CS19_PALETTE, dtype=np.uint8))
    np.testing.assert_array_equal(C.ROBOTCAR9_PALETTE, np.array(RC9_PALETTE, dtype=np.uint8))
    assert C.ROBOTCAR9_NAMES == ("sky", "person", "two-wheel", "automobile", "sign", "light", "building",
                                 "sidewalk", "road")  # fmt: skip
    assert C.class_names("robotcar9") is C.ROBOTCAR9_NAMES
    assert C.class_palette("cityscapes19") is C.CITYSCAPES19_PALETTE
    with pytest.raises(KeyError, match="unknown class set"):
        C.class_names("ade20k")


def test_evaluation_lists() -> None:
    assert C.MIOU16_CLASSES == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]
    assert C.MIOU13_CLASSES == [0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]
    assert C.SYNTHSCAPE_CLASSES == [0, 1, 2, 5, 7, 8, 10, 11, 13]
    assert C.CITYSCAPES19_CLASSES == list(range(19)) and C.ROBOTCAR9_CLASSES == list(range(9))


def test_colorize() -> None:
    label = np.array([[0, 1], [255, 18]], dtype=np.uint8)
    rgb = C.colorize(label, C.CITYSCAPES19_PALETTE)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[0, 1]) == (244, 35, 232)
    assert tuple(rgb[1, 0]) == (0, 0, 0) and tuple(rgb[1, 1]) == (119, 11, 32)
    # ids past a short palette are drawn as ignore; wider int types are fine
    rgb9 = C.colorize(np.array([[8, 9]], dtype=np.int64), C.ROBOTCAR9_PALETTE, ignore_color=(1, 2, 3))
    assert tuple(rgb9[0, 0]) == (128, 64, 128) and tuple(rgb9[0, 1]) == (1, 2, 3)
    with pytest.raises(ValueError, match="integer"):
        C.colorize(np.zeros((2, 2), dtype=np.float32), C.CITYSCAPES19_PALETTE)
    with pytest.raises(ValueError, match="0..255"):
        C.colorize(np.array([[300]]), C.CITYSCAPES19_PALETTE)
