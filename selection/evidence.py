"""Compact per-candidate statistics on the selection subset: one ``.npz`` file per candidate.

What the label-free validators need beyond the label maps (:mod:`selection.store`), small enough
to keep for every candidate (format ``hiast-select/evidence/v1``):

===================  ===================  ==========================================================
array                dtype, shape         content
===================  ===================  ==========================================================
``target_probs``     float16 (n, P, C)    softmax at P sampled pixels of each subset image
``target_shapes``    int32 (n, 2)         (H, W) the pixels were sampled from
``source_probs``     float16 (m, P, C)    same on the labelled source-val split (if configured)
``source_labels``    uint8 (m, P)         source-val labels at those pixels (255 = ignore)
``source_shapes``    int32 (m, 2)
``mixval_partner``   int32 (n,)           subset position of the image mixed into image i
``mixval_counts``    int64 (n, 2, C, 2)   MixVal probe counts, see :mod:`selection.validators.mixval`
``meta``             uint8 (bytes)        UTF-8 JSON: format, candidate_id, num_classes, settings,
                                          image ids and hash, source ids, scalars
===================  ===================  ==========================================================

The pixels are :func:`sample_pixels` of each image (same for every candidate), so candidates
compare pixel by pixel. Storage: 500 images at 1024x2048, P = 1000, C = 19 take
500 * 1000 * 19 * 2 B = 19 MB of target probabilities per candidate (+ the same per 500 source-val
images); full probability maps would be 500 * 1024 * 2048 * 19 * 2 B = 40 GB.

The validator settings (:class:`EvidenceSettings`: pixel count and seed, MixVal weight and seed,
SND temperature) are recorded in the file; reading with other expected settings, another subset,
class count or candidate raises :class:`EvidenceError` naming the file. Files are written whole
through :func:`selection.filesystem.write_bytes_atomic` (local paths or ``pyarrow.fs`` URIs).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.filesystem import exists, read_bytes, write_bytes_atomic
from selection.sampling import mixval_pairs, pixel_sampler, sample_pixels
from selection.subset import select_subset, subset_hash

__all__ = [
    "EVIDENCE_FORMAT",
    "MIXVAL_PROBES",
    "EvidenceError",
    "EvidenceSettings",
    "EvidenceWriter",
    "Evidence",
    "read_evidence",
    "check_same_sampling",
    "sample_pixels",
    "pixel_sampler",
    "mixval_pairs",
]

EVIDENCE_FORMAT = "hiast-select/evidence/v1"
# Axis 1 of mixval_counts: pixels where the candidate's own labels of the two images differ
# ("inter": the mix must keep the dominant image's class) and where they agree ("intra").
MIXVAL_PROBES = ("inter", "intra")
_PROB_TOLERANCE = 1e-3


class EvidenceError(SelectionError):
    """An evidence file is missing, corrupt, or was made with other settings than expected."""


@dataclass(frozen=True)
class EvidenceSettings:
    """Settings shared by every candidate of a selection; recorded in and checked against each file.

    ``n_pix``: pixels sampled per image; ``pixel_seed``: their seed. ``mixval_weight``: weight of
    the dominant image in a MixVal mix (> 0.5, so the mix keeps its labels; 0.55 as in MixVal);
    ``mixval_seed``: pairing seed. ``snd_temperature``: SND's softmax temperature (0.05 as in SND).
    ``source_images``: at most this many source-val images are sampled (:meth:`source_subset`;
    source-val mIoU still uses the whole split).
    """

    n_pix: int = 1000
    pixel_seed: int = 0
    mixval_weight: float = 0.55
    mixval_seed: int = 0
    snd_temperature: float = 0.05
    source_images: int = 500

    def __post_init__(self) -> None:
        if not (isinstance(self.n_pix, int) and self.n_pix >= 2):
            raise SelectionError(f"evidence n_pix must be an integer >= 2, got {self.n_pix!r}")
        if not (isinstance(self.source_images, int) and self.source_images >= 1):
            raise SelectionError(
                f"evidence source_images must be an integer >= 1, got {self.source_images!r}"
            )
        if not 0.5 < float(self.mixval_weight) < 1.0:
            raise SelectionError(f"evidence mixval_weight must be in (0.5, 1), got {self.mixval_weight!r}")
        t = float(self.snd_temperature)
        if not (math.isfinite(t) and t > 0):
            raise SelectionError(f"evidence snd_temperature must be > 0, got {self.snd_temperature!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> EvidenceSettings:
        names = {f.name for f in fields(cls)}
        if not isinstance(d, Mapping) or set(d) != names:
            raise EvidenceError(f"{where}: settings must hold exactly {sorted(names)}, got {d!r}")
        try:
            return cls(**d)
        except SelectionError as e:
            raise EvidenceError(f"{where}: {e}") from None

    def source_subset(self, source_ids: Sequence[str]) -> list[str]:
        """The source-val images whose pixels are kept (sorted; all of them if few enough)."""
        ids = [str(i) for i in source_ids]
        return select_subset(ids, min(len(ids), self.source_images), self.pixel_seed)

    def sampler(self) -> Callable[[str, tuple[int, int]], np.ndarray]:
        """``(image_id, (H, W)) -> pixel indices`` for these settings (what hiast.evidence takes)."""
        return pixel_sampler(self.n_pix, self.pixel_seed)


def _check_probs(probs: Any, n_pix: int, num_classes: int, who: str) -> np.ndarray:
    p = np.asarray(probs)
    if p.shape != (n_pix, num_classes):
        raise EvidenceError(
            f"{who}: probabilities must be (n_pix, C) = ({n_pix}, {num_classes}), got {p.shape}"
        )
    if not np.issubdtype(p.dtype, np.floating):
        raise EvidenceError(f"{who}: probabilities must be floats, got {p.dtype}")
    p32 = p.astype(np.float32, copy=False)
    if not np.all(np.isfinite(p32)):
        raise EvidenceError(f"{who}: probabilities hold NaN or infinite values")
    if p32.min() < -_PROB_TOLERANCE or p32.max() > 1 + _PROB_TOLERANCE:
        raise EvidenceError(f"{who}: probabilities outside [0, 1] ({p32.min():.4g}..{p32.max():.4g})")
    sums = p32.sum(axis=1, dtype=np.float64)
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > _PROB_TOLERANCE:
        raise EvidenceError(
            f"{who}: pixel {worst}'s probabilities sum to {sums[worst]:.6f}, not 1 (softmax?)"
        )
    return p32.astype(np.float16)


def _check_shape(shape: Any, n_pix: int, who: str) -> tuple[int, int]:
    s = tuple(int(v) for v in shape)
    if len(s) != 2 or s[0] < 1 or s[1] < 1 or s[0] * s[1] < n_pix:
        raise EvidenceError(f"{who}: image shape must be (H, W) with at least n_pix={n_pix} pixels, got {s}")
    return s  # type: ignore[return-value]


class EvidenceWriter:
    """Collect one candidate's evidence image by image, then write the file at once.

    Use as a context manager; target images (and MixVal counts) in subset order, source-val images
    in ``source_ids`` order. On leaving the block the file is written if everything announced was
    added (target images; source images if ``source_ids``; MixVal counts if ``mixval``); otherwise
    nothing is written and EvidenceError names what is missing.
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        candidate_id: str,
        num_classes: int,
        image_ids: Sequence[str],
        *,
        settings: EvidenceSettings | None = None,
        source_ids: Sequence[str] | None = None,
        mixval: bool = True,
    ) -> None:
        self.uri = os.fspath(uri)
        self.candidate_id = str(candidate_id)
        self.num_classes = int(num_classes)
        self.settings = settings or EvidenceSettings()
        self.image_ids = [str(i) for i in image_ids]
        self.source_ids = None if source_ids is None else [str(i) for i in source_ids]
        who = f"candidate {self.candidate_id!r}"
        if not 2 <= self.num_classes <= 254:
            raise EvidenceError(f"{who}: num_classes must be in 2..254, got {num_classes}")
        for name, ids in (("subset", self.image_ids), ("source-val", self.source_ids or [])):
            if len(set(ids)) != len(ids):
                raise EvidenceError(f"{who}: {name} image ids are not unique")
        if not self.image_ids:
            raise EvidenceError(f"{who}: no subset image ids")
        if self.source_ids is not None and not self.source_ids:
            raise EvidenceError(f"{who}: source_ids given but empty")
        n, p, c = len(self.image_ids), self.settings.n_pix, self.num_classes
        self._who = who
        self._target = np.zeros((n, p, c), np.float16)
        self._target_shapes = np.zeros((n, 2), np.int32)
        self._n_target = 0
        m = len(self.source_ids or [])
        self._source = np.zeros((m, p, c), np.float16)
        self._source_labels = np.zeros((m, p), np.uint8)
        self._source_shapes = np.zeros((m, 2), np.int32)
        self._n_source = 0
        self._mixval = mixval
        self._pairs = mixval_pairs(self.image_ids, self.settings.mixval_seed) if mixval else []
        self._mix_counts = np.zeros((n, len(MIXVAL_PROBES), c, 2), np.int64)
        self._n_mix = 0
        self.scalars: dict[str, float] = {}
        self._closed = False

    def _next(self, ids: list[str], pos: int, image_id: str, what: str) -> str:
        if self._closed:
            raise EvidenceError(f"{self._who}: evidence writer already closed")
        if pos >= len(ids):
            raise EvidenceError(f"{self._who}: all {len(ids)} {what} images already added, got {image_id!r}")
        if str(image_id) != ids[pos]:
            raise EvidenceError(
                f"{self._who}: {what} image {pos} is {ids[pos]!r}, got {image_id!r} (add in order)"
            )
        return f"{self._who}, {what} image {image_id!r}"

    def add_target(self, image_id: str, shape: tuple[int, int], probs: Any) -> None:
        """Softmax (P, C) at ``sample_pixels(image_id, shape, P, pixel_seed)`` of the next subset image."""
        who = self._next(self.image_ids, self._n_target, image_id, "subset")
        self._target_shapes[self._n_target] = _check_shape(shape, self.settings.n_pix, who)
        self._target[self._n_target] = _check_probs(probs, self.settings.n_pix, self.num_classes, who)
        self._n_target += 1

    def add_source(self, image_id: str, shape: tuple[int, int], probs: Any, labels: Any) -> None:
        """Softmax (P, C) and labels (P,) at the sampled pixels of the next source-val image."""
        if self.source_ids is None:
            raise EvidenceError(f"{self._who}: no source_ids were given, cannot add source-val images")
        who = self._next(self.source_ids, self._n_source, image_id, "source-val")
        shape = _check_shape(shape, self.settings.n_pix, who)
        lab = np.asarray(labels)
        if lab.shape != (self.settings.n_pix,) or not np.issubdtype(lab.dtype, np.integer):
            raise EvidenceError(
                f"{who}: labels must be ({self.settings.n_pix},) integers, got {lab.shape} {lab.dtype}"
            )
        bad = (lab < 0) | ((lab >= self.num_classes) & (lab != 255))
        if bad.any():
            raise EvidenceError(f"{who}: label {int(lab[bad][0])} is neither a class nor 255")
        k = self._n_source
        self._source[k] = _check_probs(probs, self.settings.n_pix, self.num_classes, who)
        self._source_labels[k] = lab.astype(np.uint8)
        self._source_shapes[k] = shape
        self._n_source += 1

    def add_mixval(self, image_id: str, partner_id: str, counts: Any) -> None:
        """MixVal counts (2, C, 2) of the next subset image mixed with its partner (see mixval_pairs)."""
        if not self._mixval:
            raise EvidenceError(f"{self._who}: writer was made with mixval=False")
        who = self._next(self.image_ids, self._n_mix, image_id, "MixVal")
        expected = self._pairs[self._n_mix][1]
        if str(partner_id) != expected:
            raise EvidenceError(f"{who}: its MixVal partner is {expected!r}, got {partner_id!r}")
        cnt = np.asarray(counts)
        if cnt.shape != self._mix_counts.shape[1:] or not np.issubdtype(cnt.dtype, np.integer):
            raise EvidenceError(
                f"{who}: MixVal counts must be integers {self._mix_counts.shape[1:]}, got {cnt.shape}"
            )
        if (cnt < 0).any() or (cnt[..., 1] > cnt[..., 0]).any():
            raise EvidenceError(f"{who}: MixVal counts must be >= 0 with correct <= pixels")
        self._mix_counts[self._n_mix] = cnt
        self._n_mix += 1

    def set_scalar(self, name: str, value: float) -> None:
        """A per-candidate number a validator needs (e.g. ``source_val_miou``)."""
        self.scalars[str(name)] = float(value)

    def _missing(self) -> str | None:
        if self._n_target < len(self.image_ids):
            return f"subset image {self.image_ids[self._n_target]!r} (and later ones)"
        if self.source_ids is not None and self._n_source < len(self.source_ids):
            return f"source-val image {self.source_ids[self._n_source]!r} (and later ones)"
        if self._mixval and self._n_mix < len(self.image_ids):
            return f"MixVal counts of subset image {self.image_ids[self._n_mix]!r} (and later ones)"
        return None

    def abort(self) -> None:
        self._closed = True

    def close(self) -> None:
        """Write the file (atomically) if complete; otherwise raise naming what is missing."""
        if self._closed:
            return
        self._closed = True
        missing = self._missing()
        if missing:
            raise EvidenceError(
                f"{self._who}: evidence incomplete, missing {missing}; nothing written to {self.uri}"
            )
        meta = {
            "format": EVIDENCE_FORMAT,
            "candidate_id": self.candidate_id,
            "num_classes": self.num_classes,
            "settings": self.settings.as_dict(),
            "image_ids": self.image_ids,
            "subset_hash": subset_hash(self.image_ids),
            "source_ids": self.source_ids,
            "mixval": self._mixval,
            "scalars": self.scalars,
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "target_probs": self._target,
            "target_shapes": self._target_shapes,
        }
        if self.source_ids is not None:
            arrays.update(
                source_probs=self._source,
                source_labels=self._source_labels,
                source_shapes=self._source_shapes,
            )
        if self._mixval:
            index = {i: k for k, i in enumerate(self.image_ids)}
            arrays["mixval_partner"] = np.array([index[b] for _, b in self._pairs], np.int32)
            arrays["mixval_counts"] = self._mix_counts
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # uncompressed: float16 probabilities barely compress
        write_bytes_atomic(self.uri, buf.getvalue())

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


@dataclass(frozen=True)
class Evidence:
    """One candidate's evidence as read back (arrays read-only)."""

    uri: str
    candidate_id: str
    num_classes: int
    settings: EvidenceSettings
    image_ids: tuple[str, ...]
    target_probs: np.ndarray
    target_shapes: np.ndarray
    source_ids: tuple[str, ...] | None = None
    source_probs: np.ndarray | None = None
    source_labels: np.ndarray | None = None
    source_shapes: np.ndarray | None = None
    mixval_partner: np.ndarray | None = None
    mixval_counts: np.ndarray | None = None
    scalars: dict[str, float] = field(default_factory=dict)

    @property
    def has_source(self) -> bool:
        return self.source_probs is not None

    @property
    def has_mixval(self) -> bool:
        return self.mixval_counts is not None


def _array(z: Any, name: str, uri: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if name not in z.files:
        raise EvidenceError(f"evidence file {uri}: array {name!r} missing")
    a = z[name]
    if a.dtype != dtype or a.shape != shape:
        raise EvidenceError(
            f"evidence file {uri}: {name} is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {shape}"
        )
    a.setflags(write=False)
    return a


def read_evidence(
    uri: str | os.PathLike[str],
    *,
    candidate_id: str | None = None,
    num_classes: int | None = None,
    subset_ids: Sequence[str] | None = None,
    settings: EvidenceSettings | None = None,
    source_ids: Sequence[str] | None = None,
) -> Evidence:
    """Read and check one evidence file; every expectation given is checked (error names the file)."""
    uri = os.fspath(uri)
    if not exists(uri):
        raise EvidenceError(
            f"evidence file {uri} not found" + (f" (candidate {candidate_id!r})" if candidate_id else "")
        )
    try:
        z = np.load(io.BytesIO(read_bytes(uri)), allow_pickle=False)
        meta = json.loads(bytes(z["meta"]).decode()) if "meta" in z.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise EvidenceError(f"evidence file {uri} is corrupt or unreadable: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != EVIDENCE_FORMAT:
        raise EvidenceError(f"evidence file {uri} is not a {EVIDENCE_FORMAT} file")
    try:
        cid, c = str(meta["candidate_id"]), int(meta["num_classes"])
        got_settings = EvidenceSettings.from_dict(meta["settings"], f"evidence file {uri}")
        ids = tuple(str(i) for i in meta["image_ids"])
    except (KeyError, TypeError, ValueError) as e:
        raise EvidenceError(f"evidence file {uri}: metadata is incomplete or invalid ({e})") from None
    if subset_hash(list(ids)) != meta.get("subset_hash"):
        raise EvidenceError(f"evidence file {uri}: image ids do not match its own hash (corrupt?)")
    if candidate_id is not None and cid not in (candidate_id, candidate_id.split("#", 1)[0]):
        raise EvidenceError(f"evidence file {uri} holds candidate {cid!r}, expected {candidate_id!r}")
    if num_classes is not None and c != num_classes:
        raise EvidenceError(f"evidence file {uri} was written with num_classes={c}, expected {num_classes}")
    if settings is not None and got_settings != settings:
        diff = {
            k: (v, getattr(settings, k))
            for k, v in got_settings.as_dict().items()
            if getattr(settings, k) != v
        }
        raise EvidenceError(f"evidence file {uri} was made with other settings (file, expected): {diff}")
    if subset_ids is not None and list(ids) != [str(i) for i in subset_ids]:
        raise EvidenceError(
            f"evidence file {uri} covers another subset ({len(ids)} images, hash {meta['subset_hash']}) "
            f"than expected ({len(subset_ids)} images, hash {subset_hash([str(i) for i in subset_ids])})"
        )
    n, p = len(ids), got_settings.n_pix
    src = meta.get("source_ids")
    if source_ids is not None and (src is None or list(src) != [str(i) for i in source_ids]):
        raise EvidenceError(f"evidence file {uri} holds other source-val images than expected")
    out: dict[str, Any] = {
        "target_probs": _array(z, "target_probs", uri, np.float16, (n, p, c)),
        "target_shapes": _array(z, "target_shapes", uri, np.int32, (n, 2)),
    }
    if src is not None:
        m = len(src)
        out["source_ids"] = tuple(str(i) for i in src)
        out["source_probs"] = _array(z, "source_probs", uri, np.float16, (m, p, c))
        out["source_labels"] = _array(z, "source_labels", uri, np.uint8, (m, p))
        out["source_shapes"] = _array(z, "source_shapes", uri, np.int32, (m, 2))
    if meta.get("mixval"):
        out["mixval_partner"] = _array(z, "mixval_partner", uri, np.int32, (n,))
        out["mixval_counts"] = _array(z, "mixval_counts", uri, np.int64, (n, len(MIXVAL_PROBES), c, 2))
        index = {i: k for k, i in enumerate(ids)}
        expected = [index[b] for _, b in mixval_pairs(ids, got_settings.mixval_seed)]
        if out["mixval_partner"].tolist() != expected:
            raise EvidenceError(f"evidence file {uri}: MixVal pairs differ from mixval_pairs(subset, seed)")
    scalars = {str(k): float(v) for k, v in (meta.get("scalars") or {}).items()}
    return Evidence(uri, cid, c, got_settings, ids, scalars=scalars, **out)


def check_same_sampling(evidence: Sequence[Evidence]) -> None:
    """Raise naming the first file whose subset, shapes, settings or classes differ from the first's.

    Validators that compare candidates pixel by pixel (EnsV) need this; so does any group table.
    """
    if not evidence:
        raise EvidenceError("no evidence files to compare")
    ref = evidence[0]
    for ev in evidence[1:]:
        for what, a, b in (
            ("settings", ev.settings, ref.settings),
            ("num_classes", ev.num_classes, ref.num_classes),
            ("subset image ids", ev.image_ids, ref.image_ids),
            ("source-val image ids", ev.source_ids, ref.source_ids),
        ):
            if a != b:
                raise EvidenceError(f"evidence file {ev.uri}: {what} differ from those of {ref.uri}")
        for what, a, b in (
            ("subset image shapes", ev.target_shapes, ref.target_shapes),
            ("source-val image shapes", ev.source_shapes, ref.source_shapes),
        ):
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                raise EvidenceError(
                    f"evidence file {ev.uri}: {what} differ from those of {ref.uri}, "
                    "so the sampled pixels are not the same"
                )
