"""Every evidence validator, accumulated over any set of subset images: :class:`EvidenceAccumulator`.

The evidence validators (ensv, mixval*, atc, snd, im, bnm, mean_entropy, mean_confidence,
dev, iwcv, source_val_miou) read each candidate's evidence file (:mod:`.evidence`). Each is a sum
over images (or a per-image quantity averaged over images), so an accumulator fed a chunk of the
subset's images merges exactly with one fed another chunk: the vote pass
(:func:`selection.run.plan.accumulate`) feeds each image chunk -- and within it each half of the
subset -- together with the label maps, and :mod:`selection.run.validator_table` reads the merged
values. :func:`evidence_scores` is the one-shot form (all images, one group).

What each keeps: :class:`~selection.validators.information.ProbabilityStats` (im, bnm,
mean_entropy, mean_confidence), SND's sum of row entropies and row count (the per-image sums the
evidence file holds: SND costs P^2 per image, so the writer computes it once), the MixVal counts
summed over images, ATC's per-class target counts (thresholds fitted once per candidate and
chunk on its source-val pixels, :func:`~selection.validators.atc.fit_atc`), the source-val mIoU
scalar and DEV/IWCV (recorded per candidate by the evidence writer), and one
:class:`~selection.validators.consensus.SoftVoteAccumulator` per vote group (ensv).

Which validators: those every given file supports (:func:`supported`); ``ensv`` needs a group of
at least 2 candidates with evidence. A candidate without evidence gets NaN everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from selection.errors import SelectionError
from selection.fusion.majority import mean_over_present
from selection.validators.atc import ATCFit, atc_counts, atc_iou, fit_atc
from selection.validators.consensus import SoftVoteAccumulator
from selection.validators.dev import dev, iwcv
from selection.validators.evidence import (
    Evidence,
    EvidenceError,
    EvidenceSettings,
    check_same_sampling,
    read_evidence,
)
from selection.validators.information import ProbabilityStats
from selection.validators.mixval import mixval, mixval_inter, mixval_intra
from selection.validators.registry import VALIDATORS
from selection.validators.source import SCALAR, source_val_miou

__all__ = [
    "EVIDENCE_VALIDATORS",
    "EvidenceAccumulator",
    "supported",
    "open_evidence",
    "evidence_scores",
]

EVIDENCE_VALIDATORS = tuple(n for n, s in VALIDATORS.items() if s.needs.isdisjoint({"labels", "replicates"}))
_INFO = ("im", "bnm", "mean_entropy", "mean_confidence")
_MIX = {"mixval": mixval, "mixval_inter": mixval_inter, "mixval_intra": mixval_intra}
# Recorded per candidate by the evidence writer (read, not accumulated).
_RECORDED = {"dev": dev, "iwcv": iwcv}


def _supports(ev: Evidence, name: str) -> bool:
    needs = VALIDATORS[name].needs
    if "source_probs" in needs and not ev.has_source:
        return False
    if "mixval" in needs and not ev.has_mixval:
        return False
    if name in _RECORDED and name not in ev.scalars:
        return False
    return not ("source_val_miou" in needs and SCALAR not in ev.scalars)


def _check_names(names: Collection[str]) -> None:
    unknown = [n for n in names if n not in EVIDENCE_VALIDATORS]
    if unknown:
        raise SelectionError(
            f"not evidence validators: {unknown}; these are: {', '.join(EVIDENCE_VALIDATORS)}"
        )


def supported(evidence: Collection[Evidence]) -> list[str]:
    """The evidence validators every one of these files supports, in registry order."""
    return [n for n in EVIDENCE_VALIDATORS if evidence and all(_supports(ev, n) for ev in evidence)]


def open_evidence(
    uris: Mapping[str, str | os.PathLike[str]],
    *,
    num_classes: int,
    subset_ids: Sequence[str],
    settings: EvidenceSettings | None = None,
) -> dict[str, Evidence]:
    """Read and check every candidate's evidence file; all must share settings, subset and pixels."""
    evidence = {
        cid: read_evidence(
            uri, candidate_id=cid, num_classes=num_classes, subset_ids=subset_ids, settings=settings
        )
        for cid, uri in uris.items()
    }
    if evidence:
        check_same_sampling(list(evidence.values()))
    return evidence


class EvidenceAccumulator:
    """Running sums of the evidence validators ``names`` for the candidates that have evidence.

    ``groups``: vote group -> candidate ids, for ensv's soft vote (members without evidence are
    left out of it). Build with :meth:`start` from the files; ``update`` with image positions;
    ``merge`` returns a new accumulator (parts may be read-only after a Ray round trip).
    """

    def __init__(
        self,
        names: Sequence[str],
        evidence_ids: Sequence[str],
        groups: Mapping[str, Sequence[str]],
        num_classes: int,
        *,
        atc_fits: Mapping[str, ATCFit] | None = None,
        scalars: Mapping[str, float] | None = None,
        recorded: Mapping[str, Mapping[str, float]] | None = None,
        mixval_average: str = "pixel",
    ) -> None:
        _check_names(names)
        self.names = tuple(n for n in EVIDENCE_VALIDATORS if n in set(names))
        self.ids = tuple(evidence_ids)
        self.num_classes = int(num_classes)
        self.mixval_average = mixval_average
        c = self.num_classes
        want = set(self.names)
        self.stats = {i: ProbabilityStats(c) for i in self.ids} if want & set(_INFO) else {}
        self.snd = {i: (0.0, 0) for i in self.ids} if "snd" in want else {}  # (sum of entropies, rows)
        self.mix = {i: np.zeros((2, c, 2), np.int64) for i in self.ids} if want & set(_MIX) else {}
        self.atc_fits = dict(atc_fits or {}) if "atc" in want else {}
        self.atc = {i: (np.zeros(c), np.zeros(c)) for i in self.atc_fits}
        self.scalars = dict(scalars or {}) if "source_val_miou" in want else {}
        self.recorded = {n: dict(v) for n, v in (recorded or {}).items() if n in want}
        self.members = {g: tuple(i for i in ids if i in set(self.ids)) for g, ids in groups.items()}
        self.soft = (
            {g: SoftVoteAccumulator(len(m), c) for g, m in self.members.items() if len(m) >= 2}
            if "ensv" in want
            else {}
        )
        self.images = 0

    @classmethod
    def start(
        cls,
        evidence: Mapping[str, Evidence],
        groups: Mapping[str, Sequence[str]],
        names: Collection[str] | None = None,
        *,
        atc_score: str = "neg_entropy",
        mixval_average: str = "pixel",
    ) -> EvidenceAccumulator:
        """An empty accumulator for these files: ``names`` (default: every supported one) checked
        against what each file holds (EvidenceError naming the file), ATC fitted on source-val."""
        if not evidence:
            raise SelectionError("no evidence to score")
        files = list(evidence.values())
        names = supported(files) if names is None else list(names)
        _check_names(names)
        for n in names:
            for ev in files:
                if not _supports(ev, n):
                    raise EvidenceError(
                        f"evidence file {ev.uri} lacks what {n!r} needs ({sorted(VALIDATORS[n].needs)})"
                    )
        fits, scalars = {}, {}
        recorded = {
            n: {cid: f(ev.scalars) for cid, ev in evidence.items()}
            for n, f in _RECORDED.items()
            if n in names
        }
        for cid, ev in evidence.items():
            if "atc" in names:
                fits[cid] = fit_atc(ev.source_probs, ev.source_labels, score=atc_score)
            if "source_val_miou" in names:
                scalars[cid] = source_val_miou(ev.scalars)
        return cls(
            names,
            list(evidence),
            groups,
            files[0].num_classes,
            atc_fits=fits,
            scalars=scalars,
            recorded=recorded,
            mixval_average=mixval_average,
        )

    def update(self, evidence: Mapping[str, Evidence], positions: Sequence[int], block: int = 32) -> None:
        """Add subset images at ``positions`` (indices into the files' image order), ``block`` at a time."""
        pos = np.asarray(positions, dtype=np.intp)
        for a in range(0, len(pos), max(1, block)):
            at = pos[a : a + block]
            probs = {i: evidence[i].target_probs[at] for i in self.ids}
            for i in self.ids:
                p32 = probs[i].astype(np.float32)
                if i in self.stats:
                    self.stats[i].update(p32)
                if i in self.snd:
                    total, rows = self.snd[i]
                    self.snd[i] = (
                        total + float(evidence[i].snd_entropy[at].sum()),
                        rows + probs[i][..., 0].size,
                    )
                if i in self.mix:
                    self.mix[i] = self.mix[i] + evidence[i].mixval_counts[at].sum(axis=0)
                if i in self.atc:
                    predicted, tp = atc_counts(self.atc_fits[i], probs[i])
                    self.atc[i] = (self.atc[i][0] + predicted, self.atc[i][1] + tp)
            for g, acc in self.soft.items():
                acc.update(np.stack([probs[i] for i in self.members[g]]))
        self.images += len(pos)

    def merge(self, other: EvidenceAccumulator) -> EvidenceAccumulator:
        if (other.names, other.ids, other.members) != (self.names, self.ids, self.members):
            raise SelectionError("cannot merge evidence accumulators of different candidates or validators")
        out = EvidenceAccumulator.__new__(EvidenceAccumulator)
        out.__dict__.update(self.__dict__)
        out.stats = {i: s.merge(other.stats[i]) for i, s in self.stats.items()}
        out.snd = {i: (t + other.snd[i][0], r + other.snd[i][1]) for i, (t, r) in self.snd.items()}
        out.mix = {i: m + other.mix[i] for i, m in self.mix.items()}
        out.atc = {i: (p + other.atc[i][0], t + other.atc[i][1]) for i, (p, t) in self.atc.items()}
        out.soft = {g: s.merge(other.soft[g]) for g, s in self.soft.items()}
        out.images = self.images + other.images
        return out

    def _value(self, name: str, cid: str) -> float:
        if cid not in set(self.ids) or self.images == 0:
            return float("nan")
        if name in _INFO:
            return float(getattr(self.stats[cid], name))
        if name == "snd":
            total, rows = self.snd[cid]
            return total / rows
        if name in _MIX:
            return _MIX[name](self.mix[cid], average=self.mixval_average)
        if name == "atc":
            return float(mean_over_present(atc_iou(self.atc_fits[cid], *self.atc[cid])))
        if name in self.recorded:
            return float(self.recorded[name][cid])
        return float(self.scalars[cid])  # source_val_miou

    def table(self, ids: Sequence[str], group: str | None = None) -> pd.DataFrame:
        """Values for candidates ``ids`` (rows, NaN without evidence); ensv from ``group``'s soft vote."""
        cols = [n for n in self.names if n != "ensv" or group is not None]
        out = pd.DataFrame(index=pd.Index(list(ids), name="candidate_id"), columns=cols, dtype=float)
        for n in cols:
            if n == "ensv":
                acc = self.soft.get(group) if group is not None else None
                scores = {}
                if acc is not None and acc.pixels:
                    scores = dict(zip(self.members[group], acc.scores, strict=True))
                out[n] = [scores.get(i, float("nan")) for i in ids]
            else:
                out[n] = [self._value(n, i) for i in ids]
        return out


def evidence_scores(
    evidence: Sequence[Evidence],
    names: Collection[str] | None = None,
    *,
    chunk_images: int = 32,
    atc_score: str = "neg_entropy",
    mixval_average: str = "pixel",
) -> pd.DataFrame:
    """Evidence validators of one group's candidates over all their images (index: candidate ids).

    ``names``: default every validator all files support (ensv only with >= 2 candidates); one a
    file cannot support raises EvidenceError naming the file. The same accumulator the vote pass uses.
    """
    if not evidence:
        raise SelectionError("no evidence to score")
    check_same_sampling(evidence)
    by_id = {ev.candidate_id: ev for ev in evidence}
    if names is None:
        names = [n for n in supported(evidence) if n != "ensv" or len(evidence) >= 2]
    group = {"all": list(by_id)}
    acc = EvidenceAccumulator.start(by_id, group, names, atc_score=atc_score, mixval_average=mixval_average)
    acc.update(by_id, range(len(evidence[0].image_ids)), block=chunk_images)
    return acc.table(list(by_id), group="all")
