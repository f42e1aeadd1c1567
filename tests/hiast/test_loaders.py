"""Real-dataset loaders on small fixture trees written in each dataset's own file formats."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

from hiast.config import DatasetSpec
from hiast.data import io as dio
from hiast.data.base import DatasetError
from hiast.data.classes import (
    LABELID_TO_ROBOTCAR9,
    LABELID_TO_TRAINID,
    OXFORD_TO_ROBOTCAR9,
    SYNTHIA_TO_TRAINID,
)
from hiast.data.io import InMemoryDataset, read_label_ids
from hiast.data.real import CityscapesDataset, GTA5Dataset, RobotCarDataset, SynthiaDataset

H, W = 6, 10
RNG = np.random.default_rng(0)

# ---------------------------------------------------------------- writers (datasets.md 2.6)


def write_rgb(path: Path, h: int = H, w: int = W) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(img, mode="RGB").save(path)
    return img


def write_grey(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode="L").save(path)


def write_palette(path: Path, ids: np.ndarray) -> None:
    """GTA5 style: palette index = id; the palette colours are arbitrary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette(list(RNG.integers(0, 256, 768, dtype=np.uint8)))
    im.save(path)


def write_rgba_ids(path: Path, ids: np.ndarray) -> None:
    """Oxford anno style: id in channel 0 of an RGBA PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.stack([ids, ids // 2, np.zeros_like(ids), np.full_like(ids, 255)], axis=-1).astype(np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(path)


def write_synthia16(path: Path, cls: np.ndarray, inst: np.ndarray, interlace: bool = False) -> None:
    """SYNTHIA GT/LABELS style with pypng: 16-bit RGB, class in R, instance in G."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = cls.shape
    rgb = np.stack([cls, inst, np.zeros_like(cls)], axis=-1).astype(np.uint16)
    with open(path, "wb") as f:
        png.Writer(w, h, bitdepth=16, greyscale=False, interlace=interlace).write(f, rgb.reshape(h, w * 3))


def write_png16_all_filters(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit RGB PNG whose rows use every PNG filter type (0..4), as libpng-written files do.

    pypng only writes filter 0; real SYNTHIA files are filtered, which the fast reader must undo.
    """
    h, w, _ = rgb.shape
    raw = np.ascontiguousarray(rgb.astype(">u2")).view(np.uint8).reshape(h, w * 6).astype(np.int32)
    bpp, out = 6, []
    for y in range(h):
        x = raw[y]
        up = raw[y - 1] if y else np.zeros_like(x)
        a = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
        c = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        ftype = y % 5
        if ftype == 0:
            pred = np.zeros_like(x)
        elif ftype == 1:
            pred = a
        elif ftype == 2:
            pred = up
        elif ftype == 3:
            pred = (a + up) // 2
        else:
            p = a + up - c
            pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, up, c))
        out.append(bytes([ftype]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(out)))
        + chunk(b"IEND", b"")
    )


def ids_from(values: list[int], h: int = H, w: int = W) -> np.ndarray:
    """An (h, w) map cycling through ``values``, so every value appears."""
    return np.resize(np.array(values, dtype=np.int64), h * w).reshape(h, w)


def spec(name: str, root: Path, **kw: object) -> DatasetSpec:
    return DatasetSpec(name=name, root=root, **kw)


# ---------------------------------------------------------------- Cityscapes

CS_IDS = [0, 1, 7, 8, 11, 17, 21, 23, 24, 25, 26, 31, 33, 9, 29]


def cityscapes_tree(root: Path, split: str = "train", labelled: bool = True) -> dict[str, np.ndarray]:
    names = {"aachen": ["aachen_000001_000019", "aachen_000000_000019"], "bochum": ["bochum_000000_000313"]}
    images = {}
    for city, stems in names.items():
        for stem in stems:
            images[stem] = write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            if labelled:
                ids = ids_from(CS_IDS)
                write_grey(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
                write_grey(
                    root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png",
                    LABELID_TO_TRAINID[ids],
                )
                # files of other kinds sit beside the labels in the real release
                write_rgb(root / "gtFine" / split / city / f"{stem}_gtFine_color.png")
    return images


def test_cityscapes_labelids_are_mapped_and_ids_sorted(tmp_path: Path) -> None:
    images = cityscapes_tree(tmp_path)
    ds = CityscapesDataset(spec("cityscapes", tmp_path))
    assert ds.ids == ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"]
    assert ds.has_labels and ds.num_classes == 19 and len(ds) == 3
    s = ds[1]
    assert s.id == "aachen_000001_000019"
    np.testing.assert_array_equal(s.image, images[s.id])
    assert s.image.dtype == np.uint8 and s.image.shape == (H, W, 3)
    assert s.label is not None and s.label.dtype == np.uint8 and s.label.shape == (H, W)
    # by hand: 0 unlabeled, 1 ego vehicle, 9 parking, 29 caravan -> 255; 7 road -> 0; 33 bicycle -> 18
    expected = {0: 255, 1: 255, 7: 0, 8: 1, 11: 2, 17: 5, 21: 8, 23: 10, 24: 11, 25: 12, 26: 13, 31: 16,
                33: 18, 9: 255, 29: 255}  # fmt: skip
    np.testing.assert_array_equal(s.label, np.vectorize(expected.get)(ids_from(CS_IDS)))
    assert ds.index_of("bochum_000000_000313") == 2


def test_cityscapes_train_ids_and_robotcar9(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path)
    by_train = CityscapesDataset(spec("cityscapes", tmp_path, label_format="labelTrainIds"))
    by_ids = CityscapesDataset(spec("cityscapes", tmp_path))
    np.testing.assert_array_equal(by_train[0].label, by_ids[0].label)
    rc9 = CityscapesDataset(spec("cityscapes", tmp_path, class_set="robotcar9"))
    assert rc9.num_classes == 9
    np.testing.assert_array_equal(rc9[0].label, LABELID_TO_ROBOTCAR9[ids_from(CS_IDS)])
    assert set(np.unique(rc9[0].label)) <= set(range(9)) | {255}
    rc9t = CityscapesDataset(
        spec("cityscapes", tmp_path, class_set="robotcar9", label_format="labelTrainIds")
    )
    np.testing.assert_array_equal(rc9t[2].label, rc9[2].label)


def test_cityscapes_limit_and_unlabeled_split(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path, labelled=False)
    ds = CityscapesDataset(spec("cityscapes", tmp_path, limit=2))
    assert ds.ids == ["aachen_000000_000019", "aachen_000001_000019"]
    assert not ds.has_labels and ds[0].label is None


def test_cityscapes_missing_label_is_named_at_construction(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path)
    gone = tmp_path / "gtFine/train/bochum/bochum_000000_000313_gtFine_labelIds.png"
    gone.unlink()
    with pytest.raises(DatasetError, match="bochum_000000_000313_gtFine_labelIds.png") as e:
        CityscapesDataset(spec("cityscapes", tmp_path))
    assert "bochum_000000_000313_leftImg8bit.png" in str(e.value)  # and the image it belongs to
    # limit stops before the broken pair: nothing to complain about
    assert len(CityscapesDataset(spec("cityscapes", tmp_path, limit=2))) == 2


def test_cityscapes_missing_root_split_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="root folder .*nowhere.* not found"):
        CityscapesDataset(spec("cityscapes", tmp_path / "nowhere"))
    cityscapes_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"leftImg8bit/val"):
        CityscapesDataset(spec("cityscapes", tmp_path, split="val"))
    (tmp_path / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found"):
        CityscapesDataset(spec("cityscapes", tmp_path, split="test"))


def test_trainid_file_with_out_of_range_values(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path)
    bad = tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
    write_grey(bad, ids_from([0, 5, 19, 33, 255]))
    ds = CityscapesDataset(spec("cityscapes", tmp_path, label_format="labelTrainIds"))  # lazy: no error yet
    with pytest.raises(DatasetError, match=r"labelTrainIds\.png.*values \[19, 33\]"):
        ds[0]
    ds[1]  # the other files are fine


def test_colour_label_is_rejected(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path)
    write_rgb(tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png")
    with pytest.raises(DatasetError, match="single-channel"):
        CityscapesDataset(spec("cityscapes", tmp_path))[0]


# ---------------------------------------------------------------- GTA5

GTA_IDS = [0, 7, 8, 26, 33, 3, 24]


def gta5_tree(root: Path, numbers: list[int]) -> None:
    for n in numbers:
        write_rgb(root / "images" / f"{n:05d}.png")
        write_palette(root / "labels" / f"{n:05d}.png", ids_from(GTA_IDS))


def test_gta5_palette_labels_and_gaps(tmp_path: Path) -> None:
    gta5_tree(tmp_path, [3, 1, 5])  # 2 and 4 are missing from both folders: a gap, not an error
    write_palette(tmp_path / "labels" / "00009.png", ids_from(GTA_IDS))  # label without image: ignored
    lab = tmp_path / "labels" / "00001.png"
    assert Image.open(lab).mode == "P"
    ds = GTA5Dataset(spec("gta5", tmp_path))
    assert ds.ids == ["00001", "00003", "00005"] and ds.has_labels and ds.num_classes == 19
    np.testing.assert_array_equal(ds[0].label, LABELID_TO_TRAINID[ids_from(GTA_IDS)])
    assert ds[0].label[0, :5].tolist() == [255, 0, 1, 13, 18]  # by hand: 0, 7, 8, 26, 33
    assert ds.files(2) == (tmp_path / "images/00005.png", tmp_path / "labels/00005.png")


def test_gta5_image_without_label_is_an_error(tmp_path: Path) -> None:
    gta5_tree(tmp_path, [1, 2])
    write_rgb(tmp_path / "images" / "00007.png")
    with pytest.raises(DatasetError, match=r"labels/00007\.png \(for image .*images/00007\.png\)"):
        GTA5Dataset(spec("gta5", tmp_path))


def test_gta5_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="labels"):
        GTA5Dataset(spec("gta5", tmp_path))
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match=r"other/images not found; expected images/NNNNN\.png"):
        GTA5Dataset(spec("gta5", tmp_path / "other"))


def test_gta5_unknown_label_id(tmp_path: Path) -> None:
    gta5_tree(tmp_path, [1])
    write_palette(tmp_path / "labels" / "00001.png", ids_from([7, 40, 200]))
    with pytest.raises(DatasetError, match=r"00001\.png.*\[40, 200\].*0\.\.33"):
        GTA5Dataset(spec("gta5", tmp_path))[0]


def test_size_mismatch_names_both_files(tmp_path: Path) -> None:
    gta5_tree(tmp_path, [1])
    write_palette(tmp_path / "labels" / "00001.png", ids_from(GTA_IDS, h=H + 2))
    with pytest.raises(DatasetError, match=r"images/00001\.png is 10x6 .*labels/00001\.png is 10x8"):
        GTA5Dataset(spec("gta5", tmp_path))[0]


@pytest.mark.parametrize("which", ["image", "label"])
def test_corrupt_png_is_named_at_load(tmp_path: Path, which: str) -> None:
    gta5_tree(tmp_path, [1, 2])
    path = tmp_path / ("images" if which == "image" else "labels") / "00002.png"
    path.write_bytes(path.read_bytes()[:60])  # truncated mid-stream
    ds = GTA5Dataset(spec("gta5", tmp_path))  # existence checks only: no decoding at construction
    ds[0]
    with pytest.raises(DatasetError, match=r"00002\.png: cannot read"):
        ds[1]


# ---------------------------------------------------------------- SYNTHIA

SYN_IDS = [0, 1, 2, 3, 4, 8, 10, 11, 13, 16, 21, 22]


def synthia_tree(root: Path, numbers: list[int]) -> np.ndarray:
    cls = ids_from(SYN_IDS)
    inst = RNG.integers(0, 3000, cls.shape)  # instance ids above 255: non-zero high bytes in channel 1
    for n in numbers:
        write_rgb(root / "RGB" / f"{n:07d}.png")
        write_synthia16(root / "GT" / "LABELS" / f"{n:07d}.png", cls, inst)
    return cls


def test_synthia_16bit_labels_pillow_wrong_ours_right(tmp_path: Path) -> None:
    cls = synthia_tree(tmp_path, [0, 1])
    label_file = tmp_path / "GT/LABELS/0000000.png"
    # The pitfall: Pillow returns 8-bit high bytes, so every class id reads as 0 without an error.
    pillow = np.asarray(Image.open(label_file))
    assert pillow.dtype == np.uint8 and (pillow[..., 0] == 0).all() and cls.max() > 0
    raw = read_label_ids(label_file, channel=0)
    np.testing.assert_array_equal(raw, cls)
    ds = SynthiaDataset(spec("synthia", tmp_path))
    assert ds.ids == ["0000000", "0000001"] and ds.has_labels and ds.num_classes == 19
    np.testing.assert_array_equal(ds[0].label, SYNTHIA_TO_TRAINID[cls])
    # by hand: void 0 -> 255, sky 1 -> 10, building 2 -> 2, road 3 -> 0, terrain 16 -> 255, lanes 22 -> 255
    assert ds[0].label.reshape(-1)[[0, 1, 2, 3, 9, 11]].tolist() == [255, 10, 2, 0, 255, 255]


def test_synthia_fast_reader_matches_pypng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = np.stack(
        [ids_from(SYN_IDS, 9, 13), RNG.integers(0, 65536, (9, 13)), RNG.integers(0, 65536, (9, 13))], -1
    )
    filtered, interlaced = tmp_path / "filtered.png", tmp_path / "interlaced.png"
    write_png16_all_filters(filtered, rgb)
    write_synthia16(interlaced, rgb[..., 0], rgb[..., 1], interlace=True)
    assert dio._rgb16_via_pillow(filtered) is not None  # the fast path is taken on this Pillow
    fast = [read_label_ids(p, channel=c) for p in (filtered, interlaced) for c in (0, 1)]
    monkeypatch.setattr(dio, "_rgb16_via_pillow", lambda path: None)
    slow = [read_label_ids(p, channel=c) for p in (filtered, interlaced) for c in (0, 1)]
    for f, s, want in zip(fast, slow, [rgb[..., 0], rgb[..., 1]] * 2, strict=True):
        np.testing.assert_array_equal(f, want)
        np.testing.assert_array_equal(s, want)


def test_synthia_archive_root_and_unknown_id(tmp_path: Path) -> None:
    synthia_tree(tmp_path / "RAND_CITYSCAPES", [4])
    ds = SynthiaDataset(spec("synthia", tmp_path))  # the archive's top folder works as root too
    assert ds.ids == ["0000004"]
    write_synthia16(tmp_path / "RAND_CITYSCAPES/GT/LABELS/0000004.png", ids_from([3, 23, 300]), ids_from([0]))
    with pytest.raises(DatasetError, match=r"0000004\.png.*\[23, 300\].*SYNTHIA"):
        ds[0]


# ---------------------------------------------------------------- Oxford RobotCar

OX_IDS = [0, 1, 2, 7, 8, 10, 11, 17, 33]


def robotcar_tree(root: Path) -> None:
    for seq in ("2014-12-05-11-09-10_01", "2015-05-29-09-36-29_01"):
        for frame in ("000001", "000000"):
            write_rgb(root / "train" / seq / f"{frame}.png")
    for name in ("2014-11-25-09-18-32_01_000038", "2014-11-25-09-18-32_01_000039"):
        write_rgb(root / "val" / f"{name}.png")
        write_rgba_ids(root / "anno" / f"{name}.png", ids_from(OX_IDS))


def test_robotcar_train_unlabeled_val_labelled(tmp_path: Path) -> None:
    robotcar_tree(tmp_path)
    train = RobotCarDataset(spec("robotcar", tmp_path, split="train"))
    assert train.ids[:2] == ["2014-12-05-11-09-10_01_000000", "2014-12-05-11-09-10_01_000001"]
    assert len(train) == 4 and not train.has_labels and train.num_classes == 9 and train[0].label is None
    val = RobotCarDataset(spec("robotcar", tmp_path, split="val"))
    assert val.ids == ["2014-11-25-09-18-32_01_000038", "2014-11-25-09-18-32_01_000039"] and val.has_labels
    np.testing.assert_array_equal(val[0].label, OXFORD_TO_ROBOTCAR9[ids_from(OX_IDS)])
    # by hand: 0 -> 255, 1 sky -> 0, 2 person -> 1, 7 building -> 6, 8 -> 255, 10 -> 7, 11 -> 8, 17 -> 8
    assert val[0].label[0, :8].tolist() == [255, 0, 1, 6, 255, 7, 8, 8]


def test_robotcar_grey_anno_and_missing_anno(tmp_path: Path) -> None:
    robotcar_tree(tmp_path)
    write_grey(tmp_path / "anno" / "2014-11-25-09-18-32_01_000039.png", ids_from([17, 1]))
    val = RobotCarDataset(spec("robotcar", tmp_path, split="val"))
    assert val[1].label[0, :2].tolist() == [8, 0]
    (tmp_path / "anno" / "2014-11-25-09-18-32_01_000038.png").unlink()
    with pytest.raises(DatasetError, match=r"anno/2014-11-25-09-18-32_01_000038\.png"):
        RobotCarDataset(spec("robotcar", tmp_path, split="val"))


# ---------------------------------------------------------------- HIAST JSON lists


def test_json_list_labelled_unlabeled_and_mixed(tmp_path: Path) -> None:
    cityscapes_tree(tmp_path)
    rel = "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    mask = "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
    rel2 = "leftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png"
    (tmp_path / "full.json").write_text(json.dumps([{"image_name": rel, "mask_name": mask}]))
    (tmp_path / "none.json").write_text(json.dumps([{"image_name": rel, "mask_name": ""}]))
    (tmp_path / "mixed.json").write_text(
        json.dumps([{"image_name": rel2, "mask_name": ""}, {"image_name": rel, "mask_name": mask}])
    )
    full = CityscapesDataset(
        spec("cityscapes", tmp_path, list_file=tmp_path / "full.json", label_format="labelTrainIds")
    )
    walked = CityscapesDataset(spec("cityscapes", tmp_path))
    assert full.ids == ["aachen_000000_000019"] and full.has_labels
    np.testing.assert_array_equal(full[0].label, walked[0].label)
    none = CityscapesDataset(spec("cityscapes", tmp_path, list_file=Path("none.json")))  # relative: root
    assert not none.has_labels and none[0].label is None
    mixed = CityscapesDataset(
        spec("cityscapes", tmp_path, list_file=tmp_path / "mixed.json", label_format="labelTrainIds")
    )
    assert mixed.ids == ["aachen_000000_000019", "bochum_000000_000313"] and mixed.has_labels
    assert (mixed[1].label == 255).all()


def test_json_list_errors(tmp_path: Path) -> None:
    robotcar_tree(tmp_path)
    lst = tmp_path / "oxford_train.json"
    lst.write_text("[{'image_name': 1}")
    with pytest.raises(DatasetError, match=r"oxford_train\.json.*not valid JSON"):
        RobotCarDataset(spec("robotcar", tmp_path, list_file=lst))
    lst.write_text(json.dumps([{"mask_name": ""}]))
    with pytest.raises(DatasetError, match=r"entry 0 needs .*image_name"):
        RobotCarDataset(spec("robotcar", tmp_path, list_file=lst))
    lst.write_text(json.dumps([{"image_name": "train/seq-000000.png", "mask_name": ""}]))
    with pytest.raises(DatasetError, match=r"image file\(s\) not found: .*train/seq-000000\.png"):
        RobotCarDataset(spec("robotcar", tmp_path, list_file=lst))
    entries = [{"image_name": "train/2014-12-05-11-09-10_01/000000.png", "mask_name": ""}]
    lst.write_text(json.dumps(entries))
    assert RobotCarDataset(spec("robotcar", tmp_path, list_file=lst)).ids == ["2014-12-05-11-09-10_01_000000"]


# ---------------------------------------------------------------- in memory


def test_in_memory_dataset_sorts_and_freezes() -> None:
    imgs = [np.full((4, 5, 3), k, np.uint8) for k in range(3)]
    labs = [np.full((4, 5), k, np.uint8) for k in range(3)]
    ds = InMemoryDataset(["b", "c", "a"], imgs, labs, num_classes=19)
    assert ds.ids == ["a", "b", "c"] and ds.has_labels and ds.num_classes == 19
    s = ds[0]
    assert s.id == "a" and s.image[0, 0, 0] == 2 and s.label[0, 0] == 2
    with pytest.raises(ValueError):
        s.image[0, 0, 0] = 7  # read-only: in-place augmentation cannot corrupt the dataset
    imgs[2][:] = 9  # the caller's arrays were copied
    assert ds[0].image[0, 0, 0] == 2
    assert InMemoryDataset(["x"], imgs[:1], None, num_classes=9)[0].label is None
    with pytest.raises(IndexError):
        ds[3]


def test_in_memory_dataset_validation() -> None:
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(DatasetError, match="differ"):
        InMemoryDataset(["a", "b"], [img], None, num_classes=9)
    with pytest.raises(DatasetError, match="not unique"):
        InMemoryDataset(["a", "a"], [img, img], None, num_classes=9)
    with pytest.raises(DatasetError, match=r"uint8 \(H, W, 3\)"):
        InMemoryDataset(["a"], [img.astype(np.float32)], None, num_classes=9)
    with pytest.raises(DatasetError, match="its image"):
        InMemoryDataset(["a"], [img], [np.zeros((4, 6), np.uint8)], num_classes=9)
    with pytest.raises(DatasetError, match=r"ids \[9\]"):
        InMemoryDataset(["a"], [img], [np.full((4, 5), 9, np.uint8)], num_classes=9)
