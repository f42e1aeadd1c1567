"""Predictions store: each candidate's argmax label maps on the subset, one Parquet file per candidate.

Layout (format ``hiast-select/predictions/v1``):

* columns ``image_id`` (string), ``height``, ``width`` (int32), ``labels`` (binary: the uint8 map,
  row-major, ``height * width`` bytes), zstd-compressed by Parquet (label maps are long runs);
* one row group per image, so a reader streams image by image and a worker can seek to a chunk;
* file metadata ``hiast_select.predictions`` (JSON): format, candidate_id, num_classes,
  ignore_index, num_images, subset_hash.

Written once through :class:`PredictionWriter` (temporary name, moved into place only when every
subset image was written, in order) and read back with :func:`read_predictions` or, for all
candidates aligned image by image, :func:`stream_stacks`. Paths may be local or cluster URIs
(``pyarrow.fs``). Every failure raises :class:`PredictionStoreError` naming the candidate, the
file and, once reading has started, the image.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from selection.arrays import IGNORE_INDEX, first_bad_candidate, is_torch
from selection.errors import PredictionStoreError
from selection.filesystem import delete_quietly, move, resolve, temp_path
from selection.subset import subset_hash

__all__ = [
    "PREDICTIONS_FORMAT",
    "PREDICTIONS_SCHEMA",
    "PredictionWriter",
    "PredictionFile",
    "read_predictions",
    "stream_stacks",
]

PREDICTIONS_FORMAT = "hiast-select/predictions/v1"
_META_KEY = b"hiast_select.predictions"
PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("labels", pa.binary(), nullable=False),
    ]
)


def _label_problem(labels: np.ndarray, num_classes: int, ignore_index: int) -> str | None:
    bad = first_bad_candidate(labels.reshape(1, -1), num_classes, ignore_index)
    if bad is None:
        return None
    flat = labels.reshape(-1)
    value = int(flat[(flat >= num_classes) & (flat != ignore_index)][0])
    return f"label {value} is neither a class (0..{num_classes - 1}) nor the ignore index {ignore_index}"


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
        schema = PREDICTIONS_SCHEMA.with_metadata({_META_KEY: json.dumps(meta).encode()})
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
        problem = _label_problem(arr, self.num_classes, self.ignore_index)
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
        raw_meta = (schema.metadata or {}).get(_META_KEY)
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
        problem = _label_problem(arr, self.num_classes, self.ignore_index)
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
