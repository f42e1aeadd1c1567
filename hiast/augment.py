"""Weak and strong views of a target sample for HIAST self-training (§4.4.3, Fig. 3b).

* Weak view: horizontal flip + random-sized crop resized to the training size (reference
  "Augmentation": crop height uniform in a range, width = height × out_w / out_h).
* Strong view: the weak view plus ``n_ops`` colour operations drawn from eight (colour jitter,
  Gaussian blur, contrast, brightness, posterize, equalize, solarize, greyscale), each applied with
  probability ``p``. There is deliberately no geometric strong op, so the weak and strong views
  share one label map (the pseudo-label), as Eq. 14 compares them pixel by pixel.

Images are numpy uint8 (H, W, 3) RGB, labels uint8 (H, W); every random choice comes from the
``numpy.random.Generator`` passed in, so a view is a deterministic function of the generator's
state. The magnitudes of the colour operations are ours (the paper does not give them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

__all__ = [
    "random_sized_crop",
    "horizontal_flip",
    "weak_view",
    "strong_view",
    "weak_and_strong",
    "STRONG_OPS",
]


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be numpy uint8 (H, W, 3), got {getattr(image, 'dtype', None)} {shape}")


def _check_label(label: np.ndarray | None, image: np.ndarray) -> None:
    if label is None:
        return
    if not isinstance(label, np.ndarray) or label.ndim != 2 or label.shape != image.shape[:2]:
        raise ValueError(f"label must be a numpy (H, W) array matching image {image.shape[:2]}")
    if label.dtype != np.uint8:
        # PIL's nearest resize of uint8 ("L") is what keeps the class ids intact.
        raise ValueError(f"label must be uint8 class ids (255 = ignore), got {label.dtype}")


def _check_size(size: tuple[int, int], name: str) -> tuple[int, int]:
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be (H, W) with positive entries, got {size}")
    return h, w


def random_sized_crop(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    height_range: tuple[int, int],
    out_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random crop of random size, resized to ``out_size`` (H, W).

    Crop height is an integer uniform in ``height_range`` (inclusive) clipped to the image
    height; width = height × out_W / out_H (rounded) clipped to the image width; position
    uniform. The image is resized bilinearly and the label (may be None) with nearest neighbour
    so no new class id appears.
    """
    _check_image(image)
    _check_label(label, image)
    lo, hi = (int(v) for v in height_range)
    if not 0 < lo <= hi:
        raise ValueError(f"height_range must be (low, high) with 0 < low <= high, got {height_range}")
    out_h, out_w = _check_size(out_size, "out_size")
    H, W = image.shape[:2]
    ch = min(int(rng.integers(lo, hi + 1)), H)
    cw = min(max(int(round(ch * out_w / out_h)), 1), W)
    y0 = int(rng.integers(0, H - ch + 1))
    x0 = int(rng.integers(0, W - cw + 1))
    img = image[y0 : y0 + ch, x0 : x0 + cw]
    img = np.asarray(Image.fromarray(img).resize((out_w, out_h), resample=Image.Resampling.BILINEAR))
    lab = None
    if label is not None:
        lab = label[y0 : y0 + ch, x0 : x0 + cw]
        lab = np.asarray(Image.fromarray(lab).resize((out_w, out_h), resample=Image.Resampling.NEAREST))
    return img, lab


def horizontal_flip(
    image: np.ndarray, label: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror left-right (contiguous copies)."""
    img = np.ascontiguousarray(image[:, ::-1])
    lab = None if label is None else np.ascontiguousarray(label[:, ::-1])
    return img, lab


def weak_view(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    height_range: tuple[int, int],
    out_size: tuple[int, int],
    flip_p: float = 0.5,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Weak augmentation: horizontal flip with probability ``flip_p``, then :func:`random_sized_crop`.

    The same geometry is applied to the image and the label.
    """
    _check_image(image)
    _check_label(label, image)
    if rng.random() < flip_p:
        image, label = horizontal_flip(image, label)
    return random_sized_crop(image, label, rng, height_range, out_size)


# ---------------------------------------------------------------- strong (colour-only) operations
def _colour_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    # Saturation and hue: brightness and contrast are separate operations below.
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.6, 1.4)))
    shift = int(rng.integers(-13, 14))  # about ±0.05 of the hue circle (256 steps in PIL's HSV)
    if shift:
        h, s, v = img.convert("HSV").split()
        h = h.point(lambda x: (x + shift) % 256)
        img = Image.merge("HSV", (h, s, v)).convert("RGB")
    return img


def _gaussian_blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.1, 2.0))))


def _contrast(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.5, 1.5)))


def _brightness(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.5, 1.5)))


def _posterize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.posterize(img, int(rng.integers(4, 9)))  # keep 4..8 bits


def _equalize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.equalize(img)


def _solarize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.solarize(img, threshold=int(rng.integers(128, 256)))


def _greyscale(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.grayscale(img).convert("RGB")


# Fixed order: a seed selects ops by position, so reordering this list changes every view.
STRONG_OPS: tuple[tuple[str, Callable[[Image.Image, np.random.Generator], Image.Image]], ...] = (
    ("colour_jitter", _colour_jitter),
    ("gaussian_blur", _gaussian_blur),
    ("contrast", _contrast),
    ("brightness", _brightness),
    ("posterize", _posterize),
    ("equalize", _equalize),
    ("solarize", _solarize),
    ("greyscale", _greyscale),
)


def strong_view(image: np.ndarray, rng: np.random.Generator, n_ops: int = 3, p: float = 0.5) -> np.ndarray:
    """Strong (photometric) augmentation: ``n_ops`` distinct ops of :data:`STRONG_OPS`, each with prob ``p``.

    Colour-only, so pixel positions never move and the weak view's label map stays valid.
    """
    _check_image(image)
    if not 0 <= n_ops <= len(STRONG_OPS):
        raise ValueError(f"n_ops must be in 0..{len(STRONG_OPS)}, got {n_ops}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    chosen = rng.choice(len(STRONG_OPS), size=n_ops, replace=False)
    img = Image.fromarray(image)
    for i in chosen:
        if rng.random() < p:
            img = STRONG_OPS[int(i)][1](img, rng)
    out = np.asarray(img, dtype=np.uint8)
    return out if out.flags.writeable else out.copy()


def weak_and_strong(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    height_range: tuple[int, int],
    out_size: tuple[int, int],
    flip_p: float = 0.5,
    n_ops: int = 3,
    p: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(weak_img, strong_img, label)``: the strong view is the strong ops applied to the weak view.

    Both views share the weak view's geometry, hence the single returned label.
    """
    weak_img, lab = weak_view(image, label, rng, height_range, out_size, flip_p=flip_p)
    return weak_img, strong_view(weak_img, rng, n_ops=n_ops, p=p), lab
