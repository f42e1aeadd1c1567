"""Where the job's files live: one experiment folder under ``--storage`` (a local path or a URI).

Layout of ``<storage>/<experiment>/``::

    <trial folders>, experiment_state-*.json    Ray Tune (params, progress, TensorBoard events)
    train/cand-<trial_id>/                       Ray Train runs: one per trial, round checkpoints
    warmup/rep<r>/warmup.pt                      the warm-up model of replicate r
    subset.json                                  the target images every candidate predicts
    source_val_holdout.json                      the source images held out as source-val (if any)
    predictions/[rep<r>/]<candidate_id>.parquet  one candidate's label maps on the subset
    evidence/<candidate_id>.npz                  the voting replicate's evidence (selection.validators)
    results/<candidate_id>.rep<r>.json           a finished candidate's metrics (written last)
    rung/<round>/predictions|evidence/...        early stopping: replicate 0's outputs at the rung
    early_stop.json                              early stopping's decision (who stopped, rung scores)
    pseudo_labels/                               round-1 pseudo-labels shared between candidates
    candidates.parquet, choice.json, dashboard.html
    audit.parquet (labels only), sweeps/<group>.parquet

Local paths are made absolute (Ray's workers do not share the driver's working directory).
Every node reads and writes these URIs itself, through ``pyarrow.fs``: on a cluster the storage must
be one that all nodes reach (S3/GCS, or NFS mounted at the same path; on one machine, any folder).
S3 endpoints other than AWS's (MinIO, a test server) are set the AWS way, on every node and the
driver: ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``). pyarrow reads them whenever it opens an
``s3://`` URI (``FileSystem.from_uri``, which this module and Ray's own storage use; since pyarrow
15 for the ``_S3`` one). Query parameters in the URI (``?endpoint_override=``) are refused: the
job appends paths to the URI.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from selection import atomic_output, exists, read_bytes, resolve, write_bytes_atomic

__all__ = [
    "StorageError",
    "check_storage",
    "normalize_storage",
    "join",
    "exists",
    "read_bytes",
    "write_bytes_atomic",
    "upload_file",
    "fetch_file",
    "ExperimentPaths",
]


def normalize_storage(storage: str | os.PathLike[str]) -> str:
    s = os.fspath(storage)
    return s if "://" in s else os.path.abspath(os.path.expanduser(s))


class StorageError(RuntimeError):
    """``--storage`` cannot be used; the message names it and says why."""


def _missing_folders(path: str) -> list[str]:
    """The folders ``path`` needs that do not exist yet, outermost first (local paths)."""
    missing = []
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


def check_storage(storage: str | os.PathLike[str]) -> None:
    """Write a probe object under ``storage`` and delete it; raise StorageError naming it if that fails.

    Meant to run before Ray starts, so that an unknown URI scheme, a folder that cannot be
    written, a missing bucket or wrong credentials cost nothing. Folders created for the probe
    are removed again: a job refused afterwards leaves nothing behind.
    """
    uri = normalize_storage(storage)
    if "://" in uri and "?" in uri:
        raise StorageError(
            f"--storage {uri}: options in the URI are not supported (the job appends paths to it); "
            "give an S3-compatible endpoint as AWS_ENDPOINT_URL_S3 on every node instead"
        )
    try:
        fs, path = resolve(uri)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise StorageError(f"--storage {uri}: not a storage location pyarrow can open ({e})") from None
    local = isinstance(fs, pafs.LocalFileSystem)
    if local and os.path.exists(path) and not os.path.isdir(path):
        raise StorageError(f"--storage {uri}: exists and is not a folder")
    created = _missing_folders(path) if local else []
    probe = posixpath.join(path, f".hiast-select-probe-{uuid.uuid4().hex[:12]}")
    try:
        if local:
            fs.create_dir(path, recursive=True)
        with fs.open_output_stream(probe) as out:
            out.write(b"hiast-select storage check\n")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as e:
        raise StorageError(f"--storage {uri}: cannot write there: {e}") from None
    finally:
        for folder in reversed(created):
            try:
                os.rmdir(folder)
            except OSError:
                break


def join(uri: str, *parts: str) -> str:
    if "://" in uri:
        return posixpath.join(uri, *parts)
    return os.path.join(uri, *parts)


def upload_file(local: str | os.PathLike[str], uri: str) -> None:
    """Copy a local file to ``uri``; the target appears only complete."""
    with open(local, "rb") as src, atomic_output(uri) as out:
        shutil.copyfileobj(src, out, length=1 << 22)


def fetch_file(uri: str, local_dir: str | os.PathLike[str]) -> Path:
    """A local path holding ``uri``'s bytes: the file itself when local, else a copy in ``local_dir``."""
    if "://" not in uri:
        return Path(uri)
    fs, path = resolve(uri)
    dest = Path(local_dir) / posixpath.basename(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with fs.open_input_stream(path) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, length=1 << 22)
    return dest


class ExperimentPaths:
    """Every URI the job reads or writes, derived from the storage root and experiment name."""

    def __init__(self, storage: str, experiment: str) -> None:
        self.storage = normalize_storage(storage)
        self.experiment = experiment
        self.root = join(self.storage, experiment)

    def warmup(self, replicate: int) -> str:
        return join(self.root, "warmup", f"rep{replicate}", "warmup.pt")

    @property
    def subset(self) -> str:
        return join(self.root, "subset.json")

    @property
    def source_val_holdout(self) -> str:
        return join(self.root, "source_val_holdout.json")

    def predictions(self, candidate_id: str, replicate: int) -> str:
        # Replicate 0 sits at the top so a single-replicate run has the plain documented layout.
        if replicate == 0:
            return join(self.root, "predictions", f"{candidate_id}.parquet")
        return join(self.root, "predictions", f"rep{replicate}", f"{candidate_id}.parquet")

    def evidence(self, candidate_id: str, replicate: int) -> str:
        """The evidence file of a candidate's replicate (the job writes replicate 0's only)."""
        if replicate == 0:
            return join(self.root, "evidence", f"{candidate_id}.npz")
        return join(self.root, "evidence", f"rep{replicate}", f"{candidate_id}.npz")

    def result(self, candidate_id: str, replicate: int) -> str:
        return join(self.root, "results", f"{candidate_id}.rep{replicate}.json")

    def rung_predictions(self, candidate_id: str, round_: int) -> str:
        """Replicate 0's label maps after round ``round_`` (label-free early stopping's rung)."""
        return join(self.root, "rung", str(round_), "predictions", f"{candidate_id}.parquet")

    def rung_evidence(self, candidate_id: str, round_: int) -> str:
        return join(self.root, "rung", str(round_), "evidence", f"{candidate_id}.npz")

    @property
    def early_stop(self) -> str:
        return join(self.root, "early_stop.json")

    @property
    def train_runs(self) -> str:
        return join(self.root, "train")

    @property
    def pseudo_label_cache(self) -> str:
        """A folder that every worker can reach; for object storage, a per-node local folder."""
        if "://" not in self.root:
            return join(self.root, "pseudo_labels")
        return os.path.join(tempfile.gettempdir(), "hiast-select", self.experiment, "pseudo_labels")

    @property
    def candidates(self) -> str:
        return join(self.root, "candidates.parquet")

    @property
    def choice(self) -> str:
        return join(self.root, "choice.json")

    @property
    def dashboard(self) -> str:
        return join(self.root, "dashboard.html")
