"""synthscape: procedurally generated street scenes, the embedded default benchmark.

No files are shipped: every image is drawn from a seed in a few milliseconds. The scene layout
(horizon, road in perspective, sidewalks, buildings, trees, cars, people, poles with signs) has
the same distribution in both domains; only the *camera* differs:

- source: clean flat colours per class with small per-instance variation, like a renderer;
- target: another camera, whose gap is set by ``shift`` (0 = no gap): a shifted colour palette,
  different illumination (gain, gamma and a vertical gradient), class textures (windows,
  foliage, asphalt grain), blur and sensor noise.

Labels are Cityscapes trainIds; the nine classes drawn are road, sidewalk, building, pole, sign,
vegetation, sky, person and car. Pole, sign and person are small and rare: the hard classes.
Target labels exist but are hidden from training (``WithoutLabels``) and only measure true mIoU.

Knobs beyond ``shift`` (their defaults draw exactly the images drawn before they existed):

- ``hard_class_rate``: scales the expected number of poles (with their signs) and people per
  scene, i.e. how rare the hard classes are (class imbalance). Set per domain, it is a label
  shift between the two cities (fewer pedestrians and poles in one of them).
- ``palette``: how far the target's class colours move towards the target palette, in [0, 1],
  apart from the rest of the camera gap. By default it follows ``shift`` (``min(1, 0.45 shift)``).
  The palette change is the *systematic* part of the gap (paint and materials differ: some target
  classes take colours close to another class's source colour, so a source model is confidently
  wrong on them); texture, illumination, blur and noise, which still follow ``shift``, are the
  *nuisance* part (a source model becomes unsure, rarely confidently wrong).
- ``lookalike``: target only, in [0, 1]: how far the target's sidewalks take the road's colour
  (pavements laid in the same asphalt as the road, no painted kerb). At 1 only the slab texture
  and the layout tell them apart: a source model confidently calls much of the sidewalk road.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from hiast.data.base import Sample, SegDataset

__all__ = ["SYNTHSCAPE_CLASSES", "SynthscapeDataset", "render_scene", "cache_dir", "CACHE_ENV"]

log = logging.getLogger(__name__)

CACHE_ENV = "HIAST_SYNTHSCAPE_CACHE"

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 5, 7, 8, 10, 11, 13
SYNTHSCAPE_CLASSES = [ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR]

# Source ("renderer") colours per class, and the target camera's palette the colours move towards.
_SOURCE_RGB = {
    ROAD: (128, 64, 128),
    SIDEWALK: (232, 35, 244),
    BUILDING: (70, 70, 70),
    POLE: (153, 153, 153),
    SIGN: (220, 220, 0),
    VEGETATION: (107, 142, 35),
    SKY: (70, 130, 180),
    PERSON: (220, 20, 60),
    CAR: (0, 0, 142),
}
_TARGET_RGB = {
    ROAD: (90, 90, 95),
    SIDEWALK: (150, 140, 130),
    BUILDING: (150, 110, 80),
    POLE: (60, 60, 50),
    SIGN: (200, 120, 40),
    VEGETATION: (40, 90, 50),
    SKY: (200, 210, 220),
    PERSON: (90, 60, 120),
    CAR: (170, 40, 40),
}
_DOMAIN_IDS = {"source": 0, "target": 1}
_SPLIT_IDS = {"train": 0, "val": 1}


def _count(rng: np.random.Generator, low: int, high: int, rate: float) -> int:
    """How many objects of a kind a scene gets: uniform in [low, high), its mean scaled by ``rate``.

    At rate 1 this is exactly the one draw the generator always made, so default scenes do not
    change; otherwise a Poisson count with the scaled mean (0 allowed: a scene without any).
    """
    n = int(rng.integers(low, high))
    if rate == 1.0:
        return n
    return int(rng.poisson((low + high - 1) / 2 * rate))


def _layout(
    rng: np.random.Generator, h: int, w: int, hard_class_rate: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a scene's label map and an instance map (each drawn object gets its own id)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    label = np.full((h, w), SKY, np.uint8)
    inst = np.zeros((h, w), np.int32)
    next_id = [1]

    def paint(mask: np.ndarray, cls: int) -> None:
        label[mask] = cls
        inst[mask] = next_id[0]
        next_id[0] += 1

    horizon = rng.uniform(0.38, 0.52) * h
    vanish_x = rng.uniform(0.35, 0.65) * w
    # Buildings: a skyline of boxes standing on the horizon.
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = rng.uniform(0.08, 0.25) * w
        top = horizon - rng.uniform(0.15, 0.38) * h
        if rng.random() < 0.85:
            paint((xx >= x) & (xx < x + bw) & (yy >= top) & (yy < horizon + 2), BUILDING)
        x += bw + rng.uniform(0, 0.05) * w
    # Trees: crowns as discs above the horizon, partly in front of buildings.
    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0, w), horizon - rng.uniform(0.02, 0.2) * h
        r = rng.uniform(0.05, 0.12) * h * 1.6
        paint((xx - cx) ** 2 + ((yy - cy) * 1.3) ** 2 < r**2, VEGETATION)
    # Ground: everything below the horizon is sidewalk, then the road wedge in perspective.
    below = yy >= horizon
    paint(below, SIDEWALK)
    depth = np.clip((yy - horizon) / (h - horizon), 0, 1)
    half_width = (0.04 + rng.uniform(0.45, 0.7) * depth) * w
    paint(below & (np.abs(xx - vanish_x) < half_width), ROAD)

    def ground_x(frac: float, side: float, y: float) -> float:
        d = (y - horizon) / (h - horizon)
        return vanish_x + side * (0.04 + (0.5 + frac) * d) * w

    # Poles with signs, on the sidewalk edges (thin: hard). Sizes are floored so that a model
    # with output stride 8 can still resolve them at 64x128.
    for _ in range(_count(rng, 1, 4, hard_class_rate)):
        side = rng.choice([-1.0, 1.0])
        base = rng.uniform(horizon + 0.15 * (h - horizon), h - 2)
        px = ground_x(rng.uniform(0.1, 0.35), side, base)
        scale = 0.4 + (base - horizon) / (h - horizon)
        top = base - rng.uniform(0.35, 0.6) * h * scale
        pw = max(3.0, 4.0 * scale)
        paint((np.abs(xx - px) < pw / 2) & (yy >= top) & (yy <= base), POLE)
        if rng.random() < 0.8:
            s = max(6.0, 8.0 * scale)
            sy = top + s / 2
            paint((np.abs(xx - px) < s / 2 + 0.5) & (np.abs(yy - sy) < s / 2), SIGN)
    # Cars on the road.
    for _ in range(rng.integers(0, 4)):
        base = rng.uniform(horizon + 0.1 * (h - horizon), h)
        d = (base - horizon) / (h - horizon)
        cw, ch = (0.08 + 0.3 * d) * w, (0.05 + 0.22 * d) * h
        cx = vanish_x + rng.uniform(-0.6, 0.6) * (0.04 + 0.55 * d) * w
        body = (np.abs(xx - cx) < cw / 2) & (yy > base - ch * 0.65) & (yy <= base)
        cabin = (np.abs(xx - cx) < cw / 3) & (yy > base - ch) & (yy <= base - ch * 0.6)
        paint(body | cabin, CAR)
    # People on the sidewalks (small: hard).
    for _ in range(_count(rng, 1, 5, hard_class_rate)):
        side = rng.choice([-1.0, 1.0])
        base = rng.uniform(horizon + 0.1 * (h - horizon), h)
        d = (base - horizon) / (h - horizon)
        px = ground_x(rng.uniform(0.05, 0.5), side, base)
        ph = (0.18 + 0.3 * d) * h
        pw = max(4.0, ph * 0.3)
        torso = ((xx - px) / (pw / 2)) ** 2 + ((yy - (base - ph * 0.45)) / (ph * 0.45)) ** 2 < 1
        head = (xx - px) ** 2 + (yy - (base - ph * 0.95)) ** 2 < (pw * 0.45) ** 2
        paint(torso | head, PERSON)
    return label, inst


def _texture(rng: np.random.Generator, label: np.ndarray, h: int, w: int) -> np.ndarray:
    """Class-specific texture of the target camera, in [-1, 1]."""
    yy, xx = np.mgrid[0:h, 0:w]
    tex = np.zeros((h, w), np.float32)
    grain = rng.standard_normal((h, w)).astype(np.float32)
    windows = (((yy // 3) % 2 == 0) & ((xx // 3) % 3 != 0)).astype(np.float32) * 2 - 1
    coarse = (
        np.asarray(
            Image.fromarray((rng.random((h // 4, w // 4)) * 255).astype(np.uint8)).resize(
                (w, h), Image.BILINEAR
            ),
            np.float32,
        )
        / 127.5
        - 1
    )
    tex[label == BUILDING] = windows[label == BUILDING]
    tex[label == VEGETATION] = coarse[label == VEGETATION] * 1.2
    tex[label == ROAD] = grain[label == ROAD] * 0.5
    tex[label == SIDEWALK] = (((xx + yy) // 4) % 2 * 2 - 1)[label == SIDEWALK] * 0.5
    return tex


def render_scene(
    label: np.ndarray,
    inst: np.ndarray,
    rng: np.random.Generator,
    domain: str,
    shift: float,
    palette: float | None = None,
    lookalike: float = 0.0,
) -> np.ndarray:
    """Colour a label map as the source renderer or the target camera would see it.

    ``palette`` (target only): the share of the target palette in the class colours, in [0, 1];
    None follows ``shift``. ``lookalike`` (target only): the share of the road's colour in the
    sidewalk's.
    """
    h, w = label.shape
    img = np.zeros((h, w, 3), np.float32)
    if domain != "target":
        mix = 0.0
    elif palette is None:
        mix = min(1.0, 0.45 * shift)
    else:
        mix = float(palette)
    bases = {
        cls: (1 - mix) * np.array(_SOURCE_RGB[cls], np.float32) + mix * np.array(_TARGET_RGB[cls])
        for cls in SYNTHSCAPE_CLASSES
    }
    if domain == "target" and lookalike > 0:
        bases[SIDEWALK] = (1 - lookalike) * bases[SIDEWALK] + lookalike * bases[ROAD]
    for cls in SYNTHSCAPE_CLASSES:
        base = bases[cls]
        for i in np.unique(inst[label == cls]):
            m = (inst == i) & (label == cls)
            img[m] = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    if domain == "source":
        img *= rng.uniform(0.92, 1.08)
        return np.clip(img, 0, 255).astype(np.uint8)
    # Target camera: texture, illumination, blur and noise, all scaled by the gap.
    img += (_texture(rng, label, h, w) * 22 * shift)[..., None]
    gain = 1 + rng.uniform(-0.25, 0.15) * shift
    gradient = 1 - 0.3 * shift * np.linspace(0, 1, h, dtype=np.float32)[::-1, None, None] * rng.uniform(0, 1)
    img = 255 * (np.clip(img * gain * gradient, 0, 255) / 255) ** (1 + 0.25 * shift)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if shift > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=0.6 * shift))
    img = np.asarray(pil, np.float32) + rng.normal(0, 6 * shift, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def cache_dir() -> Path:
    """Where generated splits are cached: ``$HIAST_SYNTHSCAPE_CACHE``, else a per-user temp folder."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / f"hiast-synthscape-{os.getuid()}")


# A cached split is only valid for the generator that drew it: its source is part of the key.
_GENERATOR_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


class SynthscapeDataset(SegDataset):
    """One split of one synthscape domain, generated on the fly from (seed, domain, split, index).

    Args:
        domain: "source" or "target".
        split: "train" or "val".
        n: number of images.
        image_size: (H, W).
        shift: size of the camera gap of the target domain (0..2).
        seed: the benchmark's seed; the same seed always gives the same images.
        hard_class_rate: scales the expected number of poles (with signs) and people per scene
            (>= 0; 1 draws the default scenes).
        palette: target only: the share of the target palette in the class colours (0..1);
            None follows ``shift``.
        lookalike: target only: the share of the road's colour in the sidewalk's (0..1).
        cache_dir: if given, the whole split is drawn once and kept there (two ``.npy`` files
            under a key of the parameters and this generator's source), and read back by any
            later process. Drawing a 520-image benchmark costs ~1.7 s of CPU, which every Ray
            worker would otherwise pay again.
    """

    num_classes = 19

    def __init__(
        self,
        domain: str,
        split: str,
        n: int,
        image_size: tuple[int, int] = (64, 128),
        shift: float = 1.0,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        hard_class_rate: float = 1.0,
        palette: float | None = None,
        lookalike: float = 0.0,
    ) -> None:
        if domain not in _DOMAIN_IDS:
            raise ValueError(f"synthscape domain must be 'source' or 'target', got {domain!r}")
        if split not in _SPLIT_IDS:
            raise ValueError(f"synthscape split must be 'train' or 'val', got {split!r}")
        if not (np.isfinite(hard_class_rate) and hard_class_rate >= 0):
            raise ValueError(
                f"synthscape hard_class_rate must be a finite number >= 0, got {hard_class_rate!r}"
            )
        if palette is not None and not 0.0 <= palette <= 1.0:
            raise ValueError(f"synthscape palette must be in [0, 1] or None, got {palette!r}")
        self.domain, self.split, self.shift, self.seed = domain, split, shift, seed
        if not 0.0 <= lookalike <= 1.0:
            raise ValueError(f"synthscape lookalike must be in [0, 1], got {lookalike!r}")
        self.hard_class_rate, self.palette, self.lookalike = float(hard_class_rate), palette, float(lookalike)
        self.image_size = tuple(image_size)
        self.has_labels = True
        self.name = f"synthscape-{domain}-{split}"
        self.ids = [f"{domain}_{split}_{i:05d}" for i in range(n)]
        self._cache: dict[int, Sample] = {}
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        if cache_dir is not None:
            self._arrays = self._cached_arrays(Path(cache_dir))

    def _draw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, _DOMAIN_IDS[self.domain], _SPLIT_IDS[self.split], i])
        label, inst = _layout(rng, *self.image_size, self.hard_class_rate)
        image = render_scene(label, inst, rng, self.domain, self.shift, self.palette, self.lookalike)
        return image, label

    def load(self, i: int) -> Sample:
        if i not in self._cache:
            if self._arrays is not None:
                image, label = (np.array(a[i]) for a in self._arrays)
            else:
                image, label = self._draw(i)
            self._cache[i] = Sample(self.ids[i], image, label)
        return self._cache[i]

    def cache_key(self) -> str:
        params = [self.domain, self.split, len(self.ids), list(self.image_size), self.shift, self.seed]
        params += [self.hard_class_rate, self.palette, self.lookalike]
        digest = hashlib.sha256(json.dumps(params).encode()).hexdigest()[:16]
        return f"{self.domain}-{self.split}-{len(self.ids)}-{digest}-{_GENERATOR_DIGEST}"

    def _cached_arrays(self, root: Path) -> tuple[np.ndarray, np.ndarray]:
        """The split's (images, labels), memory-mapped from ``root``; drawn and stored if absent."""
        final = root / self.cache_key()
        h, w = self.image_size
        expected = ((len(self.ids), h, w, 3), (len(self.ids), h, w))
        if final.is_dir():
            try:
                arrays = tuple(np.load(final / f, mmap_mode="r") for f in ("images.npy", "labels.npy"))
                if tuple(a.shape for a in arrays) == expected:
                    return arrays  # type: ignore[return-value]
                log.warning(
                    "synthscape cache %s has shapes %s, expected %s: drawing again",
                    final,
                    [a.shape for a in arrays],
                    expected,
                )
            except (OSError, ValueError) as e:
                log.warning("synthscape cache %s unreadable (%s): drawing again", final, e)
        drawn = [self._draw(i) for i in range(len(self.ids))]
        images = np.stack([d[0] for d in drawn])
        labels = np.stack([d[1] for d in drawn])
        # Written under a temporary name and renamed: readers never see a half-written split.
        tmp = root / f".tmp-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            np.save(tmp / "images.npy", images)
            np.save(tmp / "labels.npy", labels)
            if final.is_dir():  # an unreadable or stale copy
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        except OSError as e:
            # The cache is an optimisation only: go on with the arrays drawn here.
            if not final.is_dir():  # (else another process stored it first, which is fine)
                log.warning("synthscape cache %s not written: %s", final, e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return images, labels
