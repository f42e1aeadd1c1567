"""Hard-aware pseudo-label augmentation (HPLA) of HIAST (§4.3, Algorithm 2, Eq. 9-10).

After pseudo-label generation, the k classes with the lowest IAS thresholds are the *hard*
classes (Eq. 9). During self-training, for each target sample a class c is drawn with
probability r_c ∝ 1 − θ_c (Eq. 10), a target image whose pseudo-label contains c is drawn
uniformly, and that image's pixels of all k hard classes (image and pseudo-label) are pasted onto
the current sample (Algorithm 2, Fig. 5).

Departures from the released code, on purpose (reference "HPLA"):

* Classes no pseudo-label contains are never drawn. The released code gives them infinite
  weight and crashes on SYNTHIA (NaN sampling probabilities); here they get r = 0, and when no
  class at all can be drawn the copy-paste is a no-op.
* Sampling uses the IAS thresholds (the paper), not an EMA of kept-pixel confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "IGNORE_INDEX",
    "ClassIndex",
    "hard_classes",
    "sampling_probabilities",
    "HardAwareCopyPaste",
]

IGNORE_INDEX = 255

Fetch = Callable[[int], tuple[np.ndarray, np.ndarray]]


def _check_thresholds(thresholds: Any) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D array (C,), got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t.min() < 0.0 or t.max() > 1.0:
        raise ValueError("thresholds must be finite values in [0, 1]")
    return t


def _check_mask(mask: Any, num_classes: int, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != (num_classes,) or m.dtype != np.bool_:
        raise ValueError(f"{name} must be a boolean array of shape ({num_classes},), got {m.dtype} {m.shape}")
    return m


class ClassIndex:
    """Which pseudo-label images contain which class (image i = position i at generation time).

    Built once when the pseudo-labels are generated and stored beside them (``to_dict`` is
    JSON-able), so HPLA can draw "an image containing class c" without reading every label.
    """

    def __init__(self, num_classes: int, num_images: int, images: list[np.ndarray]) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if len(images) != num_classes:
            raise ValueError(f"need one image list per class: {len(images)} lists for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.num_images = int(num_images)
        self._images: list[np.ndarray] = []
        for c, idx in enumerate(images):
            a = np.unique(np.asarray(idx, dtype=np.int64))  # sorted, duplicates removed
            if a.size and (a[0] < 0 or a[-1] >= self.num_images):
                raise ValueError(f"class {c}: image indices must lie in 0..{self.num_images - 1}")
            self._images.append(a)

    @classmethod
    def from_labels(cls, labels: Iterable[np.ndarray], num_classes: int) -> ClassIndex:
        """Index pseudo-labels (uint8 maps, 255 = ignored); image i is the i-th label given."""
        per_class: list[list[int]] = [[] for _ in range(num_classes)]
        n = 0
        for i, lab in enumerate(labels):
            a = np.asarray(lab)
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"label {i}: expected integer class ids, got dtype {a.dtype}")
            vals = a[a != IGNORE_INDEX].ravel()
            if vals.size and (vals.min() < 0 or vals.max() >= num_classes):
                bad = sorted(set(np.unique(vals).tolist()) - set(range(num_classes)))
                raise ValueError(f"label {i}: class ids {bad} outside 0..{num_classes - 1} (255 = ignore)")
            counts = np.bincount(vals.astype(np.intp, copy=False), minlength=num_classes)
            for c in np.flatnonzero(counts):
                per_class[c].append(i)
            n = i + 1
        return cls(num_classes, n, [np.asarray(v, dtype=np.int64) for v in per_class])

    def images_with(self, c: int) -> np.ndarray:
        """Sorted indices (int64) of the images whose pseudo-label contains class ``c``."""
        if not 0 <= c < self.num_classes:
            raise ValueError(f"class {c} outside 0..{self.num_classes - 1}")
        return self._images[c].copy()

    @property
    def present(self) -> np.ndarray:
        """bool (C,): True where at least one pseudo-label contains the class."""
        return np.array([a.size > 0 for a in self._images], dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"num_classes", "num_images", "images": [[i, ...] per class]}``."""
        return {
            "num_classes": self.num_classes,
            "num_images": self.num_images,
            "images": [a.tolist() for a in self._images],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassIndex:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(int(d["num_classes"]), int(d["num_images"]), [np.asarray(v) for v in d["images"]])
        except KeyError as e:
            raise ValueError(f"class index is missing the field {e.args[0]!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassIndex):
            return NotImplemented
        return (
            self.num_classes == other.num_classes
            and self.num_images == other.num_images
            and all(np.array_equal(a, b) for a, b in zip(self._images, other._images, strict=True))
        )

    def __repr__(self) -> str:
        return f"ClassIndex(num_classes={self.num_classes}, num_images={self.num_images})"


def hard_classes(thresholds: Any, k: int, present: Any = None) -> np.ndarray:
    """Eq. 9: the ``k`` classes with the lowest thresholds, in ascending threshold order.

    The sort is stable, so ties go to the lower class id. When ``present`` (bool (C,)) is given,
    only classes with ``present[c]`` are eligible: a class that no pseudo-label contains keeps
    its initial threshold and would otherwise take a hard-class slot it can never fill. Fewer
    than ``k`` classes are returned when fewer are eligible. Returns int64 class ids.
    """
    t = _check_thresholds(thresholds)
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    order = np.argsort(t, kind="stable")
    if present is not None:
        m = _check_mask(present, t.size, "present")
        order = order[m[order]]
    return order[: int(k)].astype(np.int64)


def sampling_probabilities(thresholds: Any, drawable: Any) -> np.ndarray:
    """Eq. 10: r_c = (1 − θ_c) / Σ_i (1 − θ_i), restricted to ``drawable`` classes.

    ``drawable`` (bool (C,)) marks the classes that some pseudo-label contains; every other class
    gets r = 0 and is never drawn. If every drawable class has θ = 1 (no mass), fall back to
    uniform over the drawable classes; if no class is drawable, return all zeros (HPLA then does
    nothing). Returns float64 (C,).
    """
    t = _check_thresholds(thresholds)
    m = _check_mask(drawable, t.size, "drawable")
    r = np.where(m, 1.0 - t, 0.0)
    total = r.sum()
    if not m.any():
        return np.zeros_like(t)
    if total <= 0.0:
        return m.astype(np.float64) / m.sum()
    return r / total


def _resize(a: np.ndarray, size_hw: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    h, w = size_hw
    return np.asarray(Image.fromarray(a).resize((w, h), resample=resample))


class HardAwareCopyPaste:
    """Algorithm 2 for one sample at a time: draw c ~ r, draw a donor containing c, paste hard classes.

    Parameters
    ----------
    thresholds:
        The IAS thresholds θ (C,) at the end of pseudo-label generation.
    k:
        Number of hard classes (Eq. 9).
    class_index:
        :class:`ClassIndex` of the round's pseudo-labels.
    num_classes:
        C; must match ``thresholds`` and ``class_index``.
    restrict_hard_to_present:
        Pick the hard classes among classes that some pseudo-label contains (see
        :func:`hard_classes`); False gives Eq. 9 over all classes.

    Attributes ``hard`` (the hard classes) and ``probabilities`` (r) are fixed at construction.
    """

    def __init__(
        self,
        thresholds: Any,
        k: int,
        class_index: ClassIndex,
        num_classes: int,
        restrict_hard_to_present: bool = True,
    ) -> None:
        t = _check_thresholds(thresholds)
        if t.size != num_classes or class_index.num_classes != num_classes:
            raise ValueError(
                f"num_classes {num_classes} does not match thresholds ({t.size}) "
                f"or class_index ({class_index.num_classes})"
            )
        self.num_classes = int(num_classes)
        self.class_index = class_index
        present = class_index.present
        self.hard = hard_classes(t, k, present if restrict_hard_to_present else None)
        self.probabilities = sampling_probabilities(t, present)
        self._drawable = np.flatnonzero(self.probabilities > 0)
        self._draw_p = self.probabilities[self._drawable]
        if self._draw_p.size:
            self._draw_p = self._draw_p / self._draw_p.sum()

    def __call__(
        self,
        image: np.ndarray,
        label: np.ndarray,
        rng: np.random.Generator,
        fetch: Fetch,
        self_index: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Augment one sample; returns new ``(image, label, info)`` (inputs are not modified).

        ``image`` uint8 (H, W, 3), ``label`` uint8 (H, W) pseudo-label; ``fetch(i)`` returns image
        i of the pseudo-labelled set as ``(image, pseudo_label)``; ``self_index`` is the current
        sample's own index, excluded as donor whenever another image contains the drawn class.
        A donor of another size is resized to (H, W) (image bilinear, label nearest).
        ``info = {"class": c, "donor": i, "pasted_pixels": n}`` (``None, None, 0`` when nothing
        can be drawn).
        """
        image = np.asarray(image)
        label = np.asarray(label)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if label.shape != image.shape[:2]:
            raise ValueError(f"label shape {label.shape} does not match image {image.shape[:2]}")
        out_img = image.copy()
        out_lab = label.copy()
        if self._drawable.size == 0:
            return out_img, out_lab, {"class": None, "donor": None, "pasted_pixels": 0}

        # Algorithm 2 line 3: c ~ r, over drawable classes only (r > 0).
        c = int(rng.choice(self._drawable, p=self._draw_p))
        # Line 4: a donor image containing c, uniformly; avoid pasting an image onto itself.
        candidates = self.class_index.images_with(c)
        if self_index is not None and candidates.size > 1:
            candidates = candidates[candidates != self_index]
        donor = int(candidates[rng.integers(candidates.size)])

        d_img, d_lab = fetch(donor)
        d_img = np.asarray(d_img)
        d_lab = np.asarray(d_lab)
        if d_img.ndim != 3 or d_img.shape[2] != 3 or d_img.dtype != np.uint8:
            raise ValueError(f"donor {donor}: image must be uint8 (H, W, 3), got {d_img.dtype} {d_img.shape}")
        if d_lab.shape != d_img.shape[:2]:
            raise ValueError(f"donor {donor}: label shape {d_lab.shape} != image shape {d_img.shape[:2]}")
        hw = image.shape[:2]
        if d_img.shape[:2] != hw:
            d_img = _resize(d_img, hw, Image.Resampling.BILINEAR)
            d_lab = _resize(d_lab.astype(np.uint8, copy=False), hw, Image.Resampling.NEAREST)

        # Line 5: paste the donor's pixels of all k hard classes (Fig. 5), image and label alike.
        mask = np.isin(d_lab, self.hard)
        out_img[mask] = d_img[mask]
        out_lab[mask] = d_lab[mask]
        return out_img, out_lab, {"class": c, "donor": donor, "pasted_pixels": int(mask.sum())}
