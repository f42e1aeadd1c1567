"""Predictions store: each candidate's argmax label maps on the subset, one Parquet file per candidate.

Layout (format ``hiast-select/predictions/v1``):

* columns ``image_id`` (string), ``height``, ``width`` (int32), ``labels`` (binary: the uint8 map,
  row-major, ``height * width`` bytes), zstd-compressed by Parquet (label maps are long runs);
* one row group per image, so a reader streams image by image and a worker can seek to a chunk;
* file metadata ``hiast_select.predictions`` (JSON): format, candidate_id, num_classes,
  ignore_index, num_images, subset_hash.

Written once through :class:`PredictionWriter` (temporary name, moved into place only when every
subset image was written, in order) and read back with :func:`read_predictions` or, for all
candidates aligned image by image, :func:`stream_stacks` (both from :mod:`.predictions_reader`).
Paths may be local or cluster URIs (``pyarrow.fs``). Every failure raises
:class:`PredictionStoreError` naming the candidate, the file and, once reading has started, the image.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from selection.errors import PredictionStoreError
from selection.filesystem import delete_quietly, move, resolve, temp_path
from selection.fusion.arrays import IGNORE_INDEX, is_torch
from selection.store.predictions_format import META_KEY, PREDICTIONS_FORMAT, PREDICTIONS_SCHEMA, label_problem
from selection.store.subset import subset_hash

__all__ = ["PredictionWriter"]


class PredictionWriter:
    """Write one candidate's label maps, in subset order; commit on close only if all were written.

    Use as a context manager::

        with PredictionWriter(uri, "alpha=0.3", 19, subset_ids) as w:
            for image_id, label_map in predictions:   # (H, W) uint8, subset order
                w.write(image_id, label_map)

    On leaving the block normally, the file is moved into place if every id was written; otherwise
    the temporary file is deleted and PredictionStoreError raised (nothing is left at ``uri``). An
    exception inside the block also leaves nothing. Overwrites an existing file at ``uri``.
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        candidate_id: str,
        num_classes: int,
        image_ids: Sequence[str],
        *,
        ignore_index: int = IGNORE_INDEX,
        compression_level: int = 3,
    ) -> None:
        self.uri = os.fspath(uri)
        self.candidate_id = str(candidate_id)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.image_ids = [str(i) for i in image_ids]
        if not self.image_ids:
            raise PredictionStoreError(f"candidate {self.candidate_id!r}: no image ids to write")
        if len(set(self.image_ids)) != len(self.image_ids):
            raise PredictionStoreError(f"candidate {self.candidate_id!r}: image ids are not unique")
        self._compression_level = compression_level
        self._fs, self._path = resolve(self.uri)
        self._tmp = temp_path(self._path)
        self._stream: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._written = 0
        self._closed = False

    def _open(self) -> None:
        meta = {
            "format": PREDICTIONS_FORMAT,
            "candidate_id": self.candidate_id,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "num_images": len(self.image_ids),
            "subset_hash": subset_hash(self.image_ids),
        }
        schema = PREDICTIONS_SCHEMA.with_metadata({META_KEY: json.dumps(meta).encode()})
        parent = posixpath.dirname(self._path)
        if parent:
            self._fs.create_dir(parent, recursive=True)
        self._stream = self._fs.open_output_stream(self._tmp)
        self._writer = pq.ParquetWriter(
            self._stream,
            schema,
            compression="zstd",
            compression_level=self._compression_level,
            use_dictionary=False,
            write_statistics=["image_id", "height", "width"],  # min/max of label bytes is useless
            write_page_checksum=True,  # a flipped byte fails loudly instead of changing labels
        )

    def __enter__(self) -> PredictionWriter:
        if self._writer is None:
            self._open()
        return self

    def write(self, image_id: str, label_map: Any) -> None:
        """Append the (H, W) label map of the next subset image (uint8; 255 = ignore)."""
        if self._closed:
            raise PredictionStoreError(f"candidate {self.candidate_id!r}: writer already closed")
        pos = self._written
        if pos >= len(self.image_ids):
            raise PredictionStoreError(
                f"candidate {self.candidate_id!r}: all {len(self.image_ids)} subset images already written, "
                f"got another ({image_id!r})"
            )
        expected = self.image_ids[pos]
        if str(image_id) != expected:
            raise PredictionStoreError(
                f"candidate {self.candidate_id!r}: image {pos} of the subset is {expected!r}, "
                f"got {image_id!r} "
                "(write in subset order)"
            )
        arr = label_map.detach().cpu().numpy() if is_torch(label_map) else np.asarray(label_map)
        if arr.ndim != 2:
            raise PredictionStoreError(
                f"candidate {self.candidate_id!r}, image {image_id!r}: "
                f"label map must be (H, W), got {arr.shape}"
            )
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255:
                raise PredictionStoreError(
                    f"candidate {self.candidate_id!r}, image {image_id!r}: "
                    f"labels must be uint8, got {arr.dtype}"
                )
            arr = arr.astype(np.uint8)
        problem = label_problem(arr, self.num_classes, self.ignore_index)
        if problem:
            raise PredictionStoreError(f"candidate {self.candidate_id!r}, image {image_id!r}: {problem}")
        if self._writer is None:
            self._open()
        h, w = arr.shape
        row = pa.table(
            [
                pa.array([expected], pa.string()),
                pa.array([h], pa.int32()),
                pa.array([w], pa.int32()),
                pa.array([np.ascontiguousarray(arr).tobytes()], pa.binary()),
            ],
            schema=self._writer.schema,
        )
        self._writer.write_table(row)  # one row group per image: readers stream and seek per image
        self._written += 1

    def abort(self) -> None:
        """Drop everything written so far; nothing appears at ``uri``."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._writer is not None:
                self._writer.close()
            if self._stream is not None:
                self._stream.close()
        except (OSError, pa.ArrowException):
            pass
        delete_quietly(self._fs, self._tmp)

    def close(self) -> None:
        """Commit if every subset image was written; otherwise abort and raise."""
        if self._closed:
            return
        if self._written != len(self.image_ids):
            self.abort()
            missing = self.image_ids[self._written]
            raise PredictionStoreError(
                f"candidate {self.candidate_id!r}: only {self._written} of {len(self.image_ids)} "
                "subset images "
                f"written (next expected {missing!r}); nothing committed to {self.uri}"
            )
        try:
            assert self._writer is not None
            self._writer.close()
            self._stream.close()
            move(self._fs, self._tmp, self._path)
        except BaseException:
            self._closed = True
            delete_quietly(self._fs, self._tmp)
            raise
        self._closed = True

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
