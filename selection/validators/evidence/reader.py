"""Read one candidate's evidence file back, checking it against every expectation given."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selection.filesystem import exists, read_bytes
from selection.store.subset import subset_hash
from selection.validators.evidence.sampling import mixval_pairs
from selection.validators.evidence.settings import (
    EVIDENCE_FORMAT,
    MIXVAL_PROBES,
    EvidenceError,
    EvidenceSettings,
)

__all__ = ["Evidence", "read_evidence", "check_same_sampling"]


@dataclass(frozen=True)
class Evidence:
    """One candidate's evidence as read back (arrays read-only)."""

    uri: str
    candidate_id: str
    num_classes: int
    settings: EvidenceSettings
    image_ids: tuple[str, ...]
    target_probs: np.ndarray
    target_shapes: np.ndarray
    snd_entropy: np.ndarray
    source_ids: tuple[str, ...] | None = None
    source_probs: np.ndarray | None = None
    source_labels: np.ndarray | None = None
    source_shapes: np.ndarray | None = None
    mixval_partner: np.ndarray | None = None
    mixval_counts: np.ndarray | None = None
    scalars: dict[str, float] = field(default_factory=dict)

    @property
    def has_source(self) -> bool:
        return self.source_probs is not None

    @property
    def has_mixval(self) -> bool:
        return self.mixval_counts is not None


def _array(z: Any, name: str, uri: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if name not in z.files:
        raise EvidenceError(f"evidence file {uri}: array {name!r} missing")
    a = z[name]
    if a.dtype != dtype or a.shape != shape:
        raise EvidenceError(
            f"evidence file {uri}: {name} is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {shape}"
        )
    a.setflags(write=False)
    return a


def read_evidence(
    uri: str | os.PathLike[str],
    *,
    candidate_id: str | None = None,
    num_classes: int | None = None,
    subset_ids: Sequence[str] | None = None,
    settings: EvidenceSettings | None = None,
    source_ids: Sequence[str] | None = None,
) -> Evidence:
    """Read and check one evidence file; every expectation given is checked (error names the file)."""
    uri = os.fspath(uri)
    if not exists(uri):
        raise EvidenceError(
            f"evidence file {uri} not found" + (f" (candidate {candidate_id!r})" if candidate_id else "")
        )
    try:
        z = np.load(io.BytesIO(read_bytes(uri)), allow_pickle=False)
        meta = json.loads(bytes(z["meta"]).decode()) if "meta" in z.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise EvidenceError(f"evidence file {uri} is corrupt or unreadable: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != EVIDENCE_FORMAT:
        raise EvidenceError(f"evidence file {uri} is not a {EVIDENCE_FORMAT} file")
    try:
        cid, c = str(meta["candidate_id"]), int(meta["num_classes"])
        got_settings = EvidenceSettings.from_dict(meta["settings"], f"evidence file {uri}")
        ids = tuple(str(i) for i in meta["image_ids"])
    except (KeyError, TypeError, ValueError) as e:
        raise EvidenceError(f"evidence file {uri}: metadata is incomplete or invalid ({e})") from None
    if subset_hash(list(ids)) != meta.get("subset_hash"):
        raise EvidenceError(f"evidence file {uri}: image ids do not match its own hash (corrupt?)")
    if candidate_id is not None and cid not in (candidate_id, candidate_id.split("#", 1)[0]):
        raise EvidenceError(f"evidence file {uri} holds candidate {cid!r}, expected {candidate_id!r}")
    if num_classes is not None and c != num_classes:
        raise EvidenceError(f"evidence file {uri} was written with num_classes={c}, expected {num_classes}")
    if settings is not None and got_settings != settings:
        diff = {
            k: (v, getattr(settings, k))
            for k, v in got_settings.as_dict().items()
            if getattr(settings, k) != v
        }
        raise EvidenceError(f"evidence file {uri} was made with other settings (file, expected): {diff}")
    if subset_ids is not None and list(ids) != [str(i) for i in subset_ids]:
        raise EvidenceError(
            f"evidence file {uri} covers another subset ({len(ids)} images, hash {meta['subset_hash']}) "
            f"than expected ({len(subset_ids)} images, hash {subset_hash([str(i) for i in subset_ids])})"
        )
    n, p = len(ids), got_settings.n_pix
    src = meta.get("source_ids")
    if source_ids is not None and (src is None or list(src) != [str(i) for i in source_ids]):
        raise EvidenceError(f"evidence file {uri} holds other source-val images than expected")
    out: dict[str, Any] = {
        "target_probs": _array(z, "target_probs", uri, np.float16, (n, p, c)),
        "target_shapes": _array(z, "target_shapes", uri, np.int32, (n, 2)),
        "snd_entropy": _array(z, "snd_entropy", uri, np.float64, (n,)),
    }
    if src is not None:
        m = len(src)
        out["source_ids"] = tuple(str(i) for i in src)
        out["source_probs"] = _array(z, "source_probs", uri, np.float16, (m, p, c))
        out["source_labels"] = _array(z, "source_labels", uri, np.uint8, (m, p))
        out["source_shapes"] = _array(z, "source_shapes", uri, np.int32, (m, 2))
    if meta.get("mixval"):
        out["mixval_partner"] = _array(z, "mixval_partner", uri, np.int32, (n,))
        out["mixval_counts"] = _array(z, "mixval_counts", uri, np.int64, (n, len(MIXVAL_PROBES), c, 2))
        index = {i: k for k, i in enumerate(ids)}
        expected = [index[b] for _, b in mixval_pairs(ids, got_settings.mixval_seed)]
        if out["mixval_partner"].tolist() != expected:
            raise EvidenceError(f"evidence file {uri}: MixVal pairs differ from mixval_pairs(subset, seed)")
    scalars = {str(k): float(v) for k, v in (meta.get("scalars") or {}).items()}
    return Evidence(uri, cid, c, got_settings, ids, scalars=scalars, **out)


def check_same_sampling(evidence: Sequence[Evidence]) -> None:
    """Raise naming the first file whose subset, shapes, settings or classes differ from the first's.

    Validators that compare candidates pixel by pixel (EnsV) need this; so does any group table.
    """
    if not evidence:
        raise EvidenceError("no evidence files to compare")
    ref = evidence[0]
    for ev in evidence[1:]:
        for what, a, b in (
            ("settings", ev.settings, ref.settings),
            ("num_classes", ev.num_classes, ref.num_classes),
            ("subset image ids", ev.image_ids, ref.image_ids),
            ("source-val image ids", ev.source_ids, ref.source_ids),
        ):
            if a != b:
                raise EvidenceError(f"evidence file {ev.uri}: {what} differ from those of {ref.uri}")
        for what, a, b in (
            ("subset image shapes", ev.target_shapes, ref.target_shapes),
            ("source-val image shapes", ev.source_shapes, ref.source_shapes),
        ):
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                raise EvidenceError(
                    f"evidence file {ev.uri}: {what} differ from those of {ref.uri}, "
                    "so the sampled pixels are not the same"
                )
