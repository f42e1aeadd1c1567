"""Where the job's files live: one experiment folder under ``--storage`` (a local path or a URI).

Layout of ``<storage>/<experiment>/``::

    <trial folders>, experiment_state-*.json    Ray Tune (params, progress, TensorBoard events)
    train/cand-<trial_id>/                       Ray Train runs: one per trial, round checkpoints
    warmup/rep<r>/warmup.pt                      the warm-up model of replicate r
    subset.json                                  the target images every candidate predicts
    predictions/[rep<r>/]<candidate_id>.parquet  one candidate's label maps on the subset
    evidence/<candidate_id>.npz                  the voting replicate's evidence (selection.evidence)
    results/<candidate_id>.rep<r>.json           a finished candidate's metrics (written last)
    pseudo_labels/                               round-1 pseudo-labels shared between candidates
    candidates.parquet, choice.json, dashboard.html
    audit.parquet (labels only), sweeps/<group>.parquet

Local paths are made absolute (Ray's workers do not share the driver's working directory).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from selection.filesystem import atomic_output, exists, read_bytes, resolve, write_bytes_atomic

__all__ = [
    "normalize_storage",
    "join",
    "exists",
    "read_bytes",
    "write_bytes_atomic",
    "upload_file",
    "fetch_file",
    "list_names",
    "ExperimentPaths",
]


def normalize_storage(storage: str | os.PathLike[str]) -> str:
    s = os.fspath(storage)
    return s if "://" in s else os.path.abspath(os.path.expanduser(s))


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


def list_names(uri: str) -> list[str]:
    """Base names of the files directly inside ``uri`` (empty when it does not exist)."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File)


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
