"""Collect one candidate's evidence image by image and write the file at once (atomically)."""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.filesystem import write_bytes_atomic
from selection.store.subset import subset_hash
from selection.validators.density import snd_row_entropies
from selection.validators.dev import dev_from_pixels
from selection.validators.evidence.sampling import mixval_pairs
from selection.validators.evidence.settings import (
    EVIDENCE_FORMAT,
    MIXVAL_PROBES,
    EvidenceError,
    EvidenceSettings,
)

__all__ = ["EvidenceWriter"]

# float16 storage and float32 softmax: rows sum to 1 well within this.
_PROB_TOLERANCE = 1e-3


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
        self._snd = np.zeros(n, np.float64)
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
        stored = _check_probs(probs, self.settings.n_pix, self.num_classes, who)
        self._target[self._n_target] = stored
        # From the stored values, so that it equals SND of what a reader gets back.
        self._snd[self._n_target] = snd_row_entropies(stored, self.settings.snd_temperature).sum()
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

    def _record_dev(self) -> None:
        # DEV's domain classifier is fitted once here, on what this file holds, rather than at
        # every vote (the provisional votes would refit it for every finished candidate).
        try:
            result = dev_from_pixels(
                self._source, self._source_labels, self._target, seed=self.settings.pixel_seed
            )
        except SelectionError as e:
            warnings.warn(f"{self._who}: DEV and IWCV not recorded: {e}", stacklevel=3)
            return
        self.scalars.update(result.scalars())

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
        if self.source_ids is not None:
            self._record_dev()
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
            "snd_entropy": self._snd,
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
