"""The evidence format's constants, its error, and the settings every candidate must share."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.store.subset import select_subset
from selection.validators.evidence.sampling import pixel_sampler

__all__ = ["EVIDENCE_FORMAT", "MIXVAL_PROBES", "EvidenceError", "EvidenceSettings"]

EVIDENCE_FORMAT = "hiast-select/evidence/v2"
# Axis 1 of mixval_counts: pixels where the candidate's own labels of the two images differ
# ("inter": the mix must keep the dominant image's class) and where they agree ("intra").
MIXVAL_PROBES = ("inter", "intra")


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
