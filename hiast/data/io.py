"""Reading images and label maps from disk, mapping raw ids, and an in-memory dataset.

Every reader turns a decoding failure into a ``DatasetError`` that names the file. Label ids are
mapped by ``IdMap`` with array indexing, after checking that every value is one the source format
can hold: a stray value almost always means the wrong file (a colour visualisation, a trainId file
read as labelIds), and training on it silently would be worse than stopping.

16-bit PNGs (SYNTHIA's GT/LABELS) need care: Pillow opens a 16-bit RGB PNG as 8-bit RGB holding
the *high* bytes, so every SYNTHIA class id reads as 0 without an error. ``read_label_ids`` reads
those files exactly, with Pillow's C decoder run twice (high and low bytes) where Pillow's tile
layout is the one we know, and with pypng (pure Python, ~40x slower) otherwise.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import png
from PIL import Image

from hiast.data.base import IGNORE_INDEX, DatasetError, Sample, SegDataset

__all__ = [
    "PngHeader",
    "png_header",
    "ImageHeader",
    "image_header",
    "read_image",
    "read_label_ids",
    "IdMap",
    "check_same_size",
    "read_json_list",
    "InMemoryDataset",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What decoders raise on a damaged or foreign file; anything else is a bug and should propagate.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    zlib.error,
    struct.error,
    png.Error,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int  # 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA


def png_header(path: Path) -> PngHeader | None:
    """The IHDR fields of a PNG file, or None when the file is not a PNG. Reads 26 bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError as e:
        raise DatasetError(f"{path}: cannot open ({e.strerror or e})") from None
    if not head.startswith(_PNG_SIGNATURE):
        return None
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise DatasetError(f"{path}: corrupt PNG (truncated or missing IHDR header)")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", head[16:26])
    return PngHeader(width, height, bit_depth, color_type)


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    mode: str  # Pillow's mode: "RGB", "L", "P", "I;16", ...
    channels: int


def image_header(path: Path) -> ImageHeader:
    """Size and pixel format of an image file, from its header only (Pillow opens lazily).

    Raises DatasetError naming the file when it cannot be opened or is no image Pillow knows.
    """
    try:
        with Image.open(path) as im:
            return ImageHeader(im.width, im.height, im.mode, len(im.getbands()))
    except _DECODE_ERRORS as e:
        raise DatasetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB (grey, palette and RGBA are converted)."""
    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.array(im, dtype=np.uint8)  # np.array: a writable copy, unlike np.asarray
    except _DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


def _rgb16_via_pillow(path: Path) -> np.ndarray | None:
    """Exact uint16 (H, W, 3) of a 16-bit RGB PNG using Pillow's decoder, or None if unsure.

    Pillow decodes such a file with raw mode "RGB;16B" (big-endian, keep the high byte). Decoding
    the same stream as "RGB;16L" keeps the other byte of each sample: the low byte. Pillow still
    does the zlib inflate and the PNG unfiltering in C, so this is fast. The guard accepts only the
    exact tile layout this was checked on; anything else falls back to pypng.
    """
    with Image.open(path) as im:
        tile = im.tile
        if im.mode != "RGB" or len(tile) != 1 or getattr(tile[0], "args", None) != "RGB;16B":
            return None
        if not hasattr(tile[0], "_replace"):
            return None
        im.load()
        high = np.asarray(im)
    with Image.open(path) as im:
        im.tile = [tile[0]._replace(args="RGB;16L")]
        im.load()
        low = np.asarray(im)
    return (high.astype(np.uint16) << 8) | low


def _read_via_pypng(path: Path) -> np.ndarray:
    """Raw samples of any PNG: (H, W) or (H, W, planes); palette images give their indices."""
    width, height, rows, info = png.Reader(filename=str(path)).read()
    dtype = np.uint16 if info["bitdepth"] > 8 else np.uint8
    arr = np.vstack([np.asarray(r, dtype=dtype) for r in rows])
    planes = info["planes"]
    if arr.shape != (height, width * planes):
        raise DatasetError(
            f"{path}: corrupt PNG (decoded {arr.shape}, header says {height}x{width}x{planes})"
        )
    return arr.reshape(height, width) if planes == 1 else arr.reshape(height, width, planes)


def read_label_ids(path: Path, channel: int | None = None) -> np.ndarray:
    """Raw ids of a label image as a 2-D integer array (uint8, or uint16 for 16-bit files).

    ``channel=None`` requires a single-channel file (grey or palette: the palette index is the
    id); ``channel=k`` takes channel k of a multi-channel file (SYNTHIA: 0 = class, 1 = instance;
    Oxford RGBA: 0) and accepts single-channel files as they are.
    """
    header = png_header(path)
    try:
        if header is not None and header.bit_depth != 8:
            arr = None
            if header.bit_depth == 16 and header.color_type == 2:
                arr = _rgb16_via_pillow(path)
            if arr is None:
                arr = _read_via_pypng(path)
        else:
            with Image.open(path) as im:
                if im.mode not in ("L", "P", "I", "I;16", "I;16B", "LA", "RGB", "RGBA"):
                    raise DatasetError(f"{path}: unsupported label image mode {im.mode!r}")
                # np.array of a 'P' image gives palette indices, which is what GTA5 stores.
                arr = np.array(im)
    except _DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot read label image ({type(e).__name__}: {e})") from None
    if arr.ndim == 3:
        if channel is None:
            raise DatasetError(
                f"{path}: expected a single-channel label image (grey or palette ids), "
                f"got {arr.shape[2]} channels; is this a colour visualisation?"
            )
        if not 0 <= channel < arr.shape[2]:
            raise DatasetError(f"{path}: label image has {arr.shape[2]} channels, no channel {channel}")
        arr = arr[..., channel]
    return np.ascontiguousarray(arr)


@dataclass(frozen=True)
class IdMap:
    """Raw ids -> class ids through a 256-entry table, rejecting ids the format cannot hold.

    ``valid[v]`` says whether raw value ``v`` may appear in a file (mapped or deliberately ignored);
    255 is always accepted as the common ignore value.
    """

    table: np.ndarray  # (256,) uint8
    valid: np.ndarray  # (256,) bool
    expected: str  # for messages, e.g. "Cityscapes labelIds (0..33)"

    @classmethod
    def from_table(cls, table: np.ndarray, num_ids: int, expected: str) -> IdMap:
        """Raw ids 0..num_ids-1 (and 255) are accepted; ``table`` says where each goes."""
        table = np.asarray(table, dtype=np.uint8)
        if table.shape != (256,):
            raise ValueError(f"an id table has 256 entries, got shape {table.shape}")
        valid = np.zeros(256, dtype=bool)
        valid[:num_ids] = True
        valid[IGNORE_INDEX] = True
        return cls(table, valid, expected)

    def __call__(self, raw: np.ndarray, path: Path) -> np.ndarray:
        raw = np.asarray(raw)
        if raw.dtype == np.uint8:
            bad = ~self.valid[raw]
        else:  # 16-bit files: values past 255 are outside every map
            wide = raw.astype(np.int64)
            bad = (wide < 0) | (wide > 255) | ~self.valid[np.clip(wide, 0, 255)]
        if bad.any():
            self._fail(path, raw[bad])
        return self.table[raw.astype(np.uint8, copy=False)]

    def _fail(self, path: Path, values: np.ndarray) -> None:
        uniq = np.unique(values)
        shown = ", ".join(str(int(v)) for v in uniq[:10]) + (", ..." if len(uniq) > 10 else "")
        raise DatasetError(
            f"{path}: label holds values [{shown}] ({values.size} pixels) outside the id map; expected "
            f"{self.expected} or 255. Is this the right label file (or label_format)?"
        )


def check_same_size(image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path) -> None:
    """Labels are never resized to fit: a size mismatch means a wrong pairing, so say so."""
    if image.shape[:2] != label.shape[:2]:
        (ih, iw), (lh, lw) = image.shape[:2], label.shape[:2]
        raise DatasetError(
            f"size mismatch: image {image_path} is {iw}x{ih} (WxH) but label {label_path} is {lw}x{lh}"
        )


def read_json_list(path: Path) -> list[tuple[str, str]]:
    """A HIAST list ``[{"image_name": rel, "mask_name": rel or ""}, ...]`` as (image, mask) pairs."""
    try:
        entries = json.loads(Path(path).read_text())
    except OSError as e:
        raise DatasetError(f"{path}: cannot read list file ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: list file is not valid JSON ({e})") from None
    if not isinstance(entries, list):
        raise DatasetError(f"{path}: expected a JSON array of {{image_name, mask_name}} objects")
    pairs = []
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("image_name"), str) or not e["image_name"]:
            raise DatasetError(f"{path}: entry {k} needs a non-empty string image_name, got {e!r}")
        mask = e.get("mask_name", "")
        if not isinstance(mask, str):
            raise DatasetError(f"{path}: entry {k} has a mask_name that is not a string: {mask!r}")
        pairs.append((e["image_name"], mask))
    return pairs


class InMemoryDataset(SegDataset):
    """A dataset of arrays already in memory (tests, synthscape).

    Samples are reordered by id so that ``ids`` is sorted like every other loader's. The arrays are
    copied and made read-only: a caller that augments in place must copy first, and can never
    corrupt the dataset for the next epoch.
    """

    def __init__(
        self,
        ids: Sequence[str],
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray] | None,
        num_classes: int,
        name: str = "memory",
    ) -> None:
        if len(images) != len(ids) or (labels is not None and len(labels) != len(ids)):
            n_lab = "no" if labels is None else len(labels)
            raise DatasetError(f"{name}: {len(ids)} ids, {len(images)} images and {n_lab} labels differ")
        if len(set(ids)) != len(ids):
            raise DatasetError(f"{name}: ids are not unique")
        order = sorted(range(len(ids)), key=lambda k: ids[k])
        self.name = name
        self.ids = [str(ids[k]) for k in order]
        self.num_classes = int(num_classes)
        self.has_labels = labels is not None
        self._images = [self._frozen_image(images[k], str(ids[k])) for k in order]
        self._labels = None
        if labels is not None:
            self._labels = [
                self._frozen_label(labels[k], img.shape[:2], str(ids[k]))
                for k, img in zip(order, self._images, strict=True)
            ]

    def _frozen_image(self, image: np.ndarray, sid: str) -> np.ndarray:
        image = np.array(image, copy=True)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DatasetError(
                f"{self.name}: image {sid!r} must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
            )
        image.flags.writeable = False
        return image

    def _frozen_label(self, label: np.ndarray, image_hw: tuple[int, ...], sid: str) -> np.ndarray:
        label = np.array(label, copy=True)
        if label.dtype != np.uint8 or label.ndim != 2:
            raise DatasetError(
                f"{self.name}: label {sid!r} must be uint8 (H, W), got {label.dtype} {label.shape}"
            )
        if label.shape != image_hw:
            raise DatasetError(
                f"{self.name}: label {sid!r} is {label.shape} (H, W) but its image is {image_hw}"
            )
        bad = (label >= self.num_classes) & (label != IGNORE_INDEX)
        if bad.any():
            raise DatasetError(
                f"{self.name}: label {sid!r} holds ids {np.unique(label[bad]).tolist()} "
                f">= num_classes {self.num_classes} (other than 255)"
            )
        label.flags.writeable = False
        return label

    def load(self, i: int) -> Sample:
        label = None if self._labels is None else self._labels[i]
        return Sample(self.ids[i], self._images[i], label)
