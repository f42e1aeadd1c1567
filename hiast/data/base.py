"""The one dataset interface every loader (synthscape and the real ones) implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Sample", "SegDataset", "Subset", "DatasetError", "IGNORE_INDEX"]

IGNORE_INDEX = 255


class DatasetError(ValueError):
    """Bad dataset input: the message names the file or folder and what was expected."""


@dataclass(frozen=True)
class Sample:
    id: str
    image: np.ndarray  # uint8 (H, W, 3), RGB
    label: np.ndarray | None  # uint8 (H, W) of class ids, 255 = ignore; None when unlabeled


class SegDataset(Sequence[Sample]):
    """A sequence of samples with stable, sorted string ids.

    Subclasses set ``ids``, ``num_classes``, ``has_labels`` and implement ``load(i)``.
    """

    ids: list[str]
    num_classes: int
    has_labels: bool
    name: str = "dataset"

    def load(self, i: int) -> Sample:
        raise NotImplementedError

    def verify(self, *, full: bool = False, labels: bool = True) -> None:
        """Check the files behind the samples before any training; DatasetError names the bad ones.

        Datasets held in memory or generated have no files: nothing to check. ``full`` decodes
        every file; ``labels=False`` leaves label files alone (labels the run never reads).
        """

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} images")
        return self.load(i % len(self))

    def index_of(self, sample_id: str) -> int:
        try:
            return self._id_index[sample_id]
        except AttributeError:
            self._id_index = {s: i for i, s in enumerate(self.ids)}
            return self.index_of(sample_id)
        except KeyError:
            raise DatasetError(f"{self.name}: no image with id {sample_id!r}") from None


class Subset(SegDataset):
    """Some of a dataset's images, by id, in the dataset's (sorted) order: a split held out of
    another (hiast.data.holdout) or what is left of it."""

    def __init__(self, inner: SegDataset, ids: Sequence[str], name: str) -> None:
        self.inner = inner
        self._index = sorted(inner.index_of(i) for i in ids)
        self.ids = [inner.ids[i] for i in self._index]
        self.num_classes = inner.num_classes
        self.has_labels = inner.has_labels
        self.name = name

    def load(self, i: int) -> Sample:
        return self.inner.load(self._index[i])

    def verify(self, *, full: bool = False, labels: bool = True) -> None:
        # The files are the inner dataset's; checking them all is correct, if more than needed.
        self.inner.verify(full=full, labels=labels)


class WithoutLabels(SegDataset):
    """The same images with labels hidden: what a label-free step is allowed to see."""

    def __init__(self, inner: SegDataset) -> None:
        self.inner = inner
        self.ids = inner.ids
        self.num_classes = inner.num_classes
        self.has_labels = False
        self.name = f"{inner.name} (labels hidden)"

    def load(self, i: int) -> Sample:
        s = self.inner.load(i)
        return Sample(s.id, s.image, None)

    def verify(self, *, full: bool = False, labels: bool = True) -> None:
        self.inner.verify(full=full, labels=False)  # hidden labels are never read
