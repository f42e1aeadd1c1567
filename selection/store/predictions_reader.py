"""Reading the predictions store back: one file checked and streamed, or all candidates aligned.

Format: :mod:`.predictions_writer`. Every failure raises :class:`PredictionStoreError` naming the
candidate, the file and, once reading has started, the image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from selection.errors import PredictionStoreError
from selection.filesystem import resolve
from selection.fusion.arrays import IGNORE_INDEX
from selection.store.predictions_format import META_KEY, PREDICTIONS_FORMAT, PREDICTIONS_SCHEMA, label_problem
from selection.store.subset import subset_hash

__all__ = ["PredictionFile", "read_predictions", "stream_stacks"]


class PredictionFile:
    """An opened predictions file: metadata checked; image ids known; streams maps on demand."""

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        candidate_id: str | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.uri = os.fspath(uri)
        self._who = f"candidate {candidate_id!r}" if candidate_id is not None else "predictions"
        self._file: Any = None
        try:
            self._open(candidate_id, num_classes)
        except BaseException:
            self.close()
            raise

    def _open(self, candidate_id: str | None, num_classes: int | None) -> None:
        fs, path = resolve(self.uri)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise PredictionStoreError(f"{self._who}: predictions file {self.uri} not found")
        try:
            self._file = fs.open_input_file(path)
            self._pf = pq.ParquetFile(self._file, page_checksum_verification=True)
            schema = self._pf.schema_arrow
        except (pa.ArrowException, OSError) as e:
            raise PredictionStoreError(
                f"{self._who}: predictions file {self.uri} is corrupt or unreadable: {e}"
            ) from None
        for field in PREDICTIONS_SCHEMA:
            if field.name not in schema.names or schema.field(field.name).type != field.type:
                raise PredictionStoreError(
                    f"{self._who}: {self.uri} is not a predictions file "
                    f"(column {field.name!r} of type {field.type} missing; has {schema})"
                )
        raw_meta = (schema.metadata or {}).get(META_KEY)
        try:
            ids = self._pf.read(columns=["image_id"]).column("image_id").to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise PredictionStoreError(
                f"{self._who}: predictions file {self.uri} is corrupt or unreadable: {e}"
            ) from None
        try:
            meta = json.loads(raw_meta) if raw_meta is not None else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != PREDICTIONS_FORMAT:
            raise PredictionStoreError(f"{self._who}: {self.uri} lacks {PREDICTIONS_FORMAT} metadata")
        self.meta = meta
        self.candidate_id = str(meta["candidate_id"])
        self.num_classes = int(meta["num_classes"])
        self.ignore_index = int(meta.get("ignore_index", IGNORE_INDEX))
        # A replicate's member id is "<candidate>#r<k>"; its file may carry either form.
        if candidate_id is not None and self.candidate_id not in (
            candidate_id,
            candidate_id.split("#", 1)[0],
        ):
            raise PredictionStoreError(
                f"candidate {candidate_id!r}: {self.uri} holds the predictions of "
                f"candidate {self.candidate_id!r}"
            )
        self._who = f"candidate {self.candidate_id!r}"
        if num_classes is not None and self.num_classes != num_classes:
            raise PredictionStoreError(
                f"{self._who}: {self.uri} was written with num_classes={self.num_classes}, "
                f"expected {num_classes}"
            )
        self.image_ids = [str(i) for i in ids]
        if len(self.image_ids) != meta.get("num_images") or subset_hash(self.image_ids) != meta.get(
            "subset_hash"
        ):
            raise PredictionStoreError(
                f"{self._who}: {self.uri} image ids do not match its own metadata (corrupt?)"
            )
        md = self._pf.metadata
        self._group_rows = [md.row_group(g).num_rows for g in range(md.num_row_groups)]

    def check_ids(self, expected_ids: Sequence[str]) -> None:
        """Raise naming the first image where this file's ids differ from ``expected_ids``."""
        expected = [str(i) for i in expected_ids]
        if self.image_ids == expected:
            return
        for pos, (got, exp) in enumerate(zip(self.image_ids, expected, strict=False)):
            if got != exp:
                where = "missing" if exp not in set(self.image_ids) else "out of order"
                raise PredictionStoreError(
                    f"{self._who}: {self.uri} has image {got!r} at position {pos} "
                    f"where the subset has {exp!r} "
                    f"({exp!r} is {where} in the file)"
                )
        if len(self.image_ids) < len(expected):
            raise PredictionStoreError(
                f"{self._who}: {self.uri} holds {len(self.image_ids)} images, the subset {len(expected)}; "
                f"first missing image {expected[len(self.image_ids)]!r}"
            )
        raise PredictionStoreError(
            f"{self._who}: {self.uri} holds {len(self.image_ids)} images, the subset {len(expected)}; "
            f"extra image {self.image_ids[len(expected)]!r}"
        )

    def iter_maps(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (image_id, (H, W) uint8 read-only map) for images ``start:stop``, one row group at a time."""
        stop = len(self.image_ids) if stop is None else min(stop, len(self.image_ids))
        row0 = 0
        for g, nrows in enumerate(self._group_rows):
            if row0 + nrows <= start:
                row0 += nrows
                continue
            if row0 >= stop:
                break
            try:
                table = self._pf.read_row_group(g)
            except (pa.ArrowException, OSError) as e:
                first = self.image_ids[row0] if row0 < len(self.image_ids) else "?"
                raise PredictionStoreError(
                    f"{self._who}, image {first!r}: {self.uri} is corrupt (row group {g}): {e}"
                ) from None
            ids = table.column("image_id").to_pylist()
            hs = table.column("height").to_pylist()
            ws = table.column("width").to_pylist()
            labels = table.column("labels").chunks
            flat = [s for chunk in labels for s in chunk]
            for r in range(nrows):
                pos = row0 + r
                if not start <= pos < stop:
                    continue
                yield ids[r], self._decode(ids[r], hs[r], ws[r], flat[r])
            row0 += nrows

    def _decode(self, image_id: str, h: int, w: int, scalar: pa.BinaryScalar) -> np.ndarray:
        buf = scalar.as_buffer()
        if h is None or w is None or h < 1 or w < 1 or buf is None or buf.size != h * w:
            size = None if buf is None else buf.size
            raise PredictionStoreError(
                f"{self._who}, image {image_id!r}: {self.uri} is corrupt ({size} label bytes for {h}x{w})"
            )
        arr = np.frombuffer(buf, dtype=np.uint8).reshape(h, w)
        problem = label_problem(arr, self.num_classes, self.ignore_index)
        if problem:
            raise PredictionStoreError(f"{self._who}, image {image_id!r}: {self.uri}: {problem}")
        return arr

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_predictions(
    uri: str | os.PathLike[str],
    expected_ids: Sequence[str] | None = None,
    *,
    candidate_id: str | None = None,
    num_classes: int | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Stream (image_id, (H, W) uint8 map) from one candidate's file, checking schema and ids.

    ``expected_ids``: the subset the file must hold, in order (error names the first difference).
    ``start``/``stop``: a slice of the subset (a parallel worker's chunk). Maps are read-only views.
    """
    pf = PredictionFile(uri, candidate_id=candidate_id, num_classes=num_classes)
    if expected_ids is not None:
        pf.check_ids(expected_ids)
    try:
        yield from pf.iter_maps(start, stop)
    finally:
        pf.close()


def stream_stacks(
    uris: Mapping[str, str | os.PathLike[str]],
    expected_ids: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (image_id, (n, H, W) uint8 stack) aligning every candidate's file image by image.

    ``uris`` maps candidate id -> file; stack rows follow its order. Errors name the candidate and
    image: a missing or corrupt file, different image sets or order (against ``expected_ids``, or
    the first file's ids when None), different ``num_classes``, different map shapes, bad labels.
    """
    if len(uris) < 1:
        raise PredictionStoreError("stream_stacks needs at least one candidate's predictions")
    files: list[PredictionFile] = []
    try:
        for cid, uri in uris.items():
            files.append(PredictionFile(uri, candidate_id=cid, num_classes=num_classes))
        reference = list(expected_ids) if expected_ids is not None else files[0].image_ids
        classes = {f.num_classes for f in files}
        if len(classes) > 1:
            detail = ", ".join(f"{f.candidate_id!r}: {f.num_classes}" for f in files)
            raise PredictionStoreError(f"candidates were written with different num_classes ({detail})")
        for f in files:
            f.check_ids(reference)
        iters = [f.iter_maps(start, stop) for f in files]
        n = len(files)
        for items in zip(*iters, strict=True):
            image_id = items[0][0]
            shape = items[0][1].shape
            stack = np.empty((n, *shape), dtype=np.uint8)
            for j, (f, (iid, arr)) in enumerate(zip(files, items, strict=True)):
                if iid != image_id:  # defensive: ids were checked against the same reference above
                    raise PredictionStoreError(
                        f"candidate {f.candidate_id!r}: image {iid!r} where {image_id!r} expected"
                    )
                if arr.shape != shape:
                    raise PredictionStoreError(
                        f"candidate {f.candidate_id!r}, image {image_id!r}: "
                        f"map is {arr.shape[0]}x{arr.shape[1]}, "
                        f"candidate {files[0].candidate_id!r}'s is {shape[0]}x{shape[1]}"
                    )
                stack[j] = arr
            yield image_id, stack
    finally:
        for f in files:
            f.close()
