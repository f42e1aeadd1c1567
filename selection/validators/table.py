"""Every validator's value for the candidates of one vote group: one row per candidate.

* :func:`evidence_scores` -- from the candidates' evidence files (:mod:`selection.evidence`):
  ensv, mixval*, atc, snd, im, bnm, entropy, confidence, source_val_miou.
* :func:`label_scores` -- from the stored label maps, streamed image by image (two passes only
  when trimming flags a degenerate candidate): f_miou, f_miou_trimmed, f_miou_lno.
* :func:`replicate_scores` -- seed_agreement from each candidate's replicate label maps.
* :func:`group_table` -- all of them for one vote group, reading the files (what the selection
  benchmark calls; the Ray job computes the label scores in its own fan-out pass instead).

Column order follows :data:`selection.validators.registry.VALIDATORS`; values are floats, NaN
where a score is undefined (rules rank NaN last).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from selection.candidates import Candidate, vote_groups
from selection.errors import SelectionError
from selection.evidence import Evidence, EvidenceError, EvidenceSettings, check_same_sampling, read_evidence
from selection.fusion import IGNORE_INDEX, FusionAccumulator
from selection.store import stream_stacks
from selection.trimming import DEFAULT_TRIM_RULE, TrimRule, find_degenerate
from selection.validators.agreement import seed_agreement
from selection.validators.atc import atc
from selection.validators.consensus import LeaveNeighboursOut, SoftVoteAccumulator, leave_out, neighbours
from selection.validators.density import SNDAccumulator
from selection.validators.information import ProbabilityStats
from selection.validators.mixval import mixval, mixval_inter, mixval_intra
from selection.validators.registry import VALIDATORS
from selection.validators.source import SCALAR, source_val_miou

__all__ = [
    "EVIDENCE_VALIDATORS",
    "LABEL_VALIDATORS",
    "evidence_scores",
    "label_scores",
    "replicate_scores",
    "group_table",
]

EVIDENCE_VALIDATORS = tuple(n for n, s in VALIDATORS.items() if s.needs.isdisjoint({"labels", "replicates"}))
LABEL_VALIDATORS = ("f_miou", "f_miou_trimmed", "f_miou_lno")
_INFO = ("im", "bnm", "entropy", "confidence")
_MIX = {"mixval": mixval, "mixval_inter": mixval_inter, "mixval_intra": mixval_intra}


def _supported(ev: Evidence, name: str) -> bool:
    needs = VALIDATORS[name].needs
    if "source_probs" in needs and not ev.has_source:
        return False
    if "mixval" in needs and not ev.has_mixval:
        return False
    return not ("source_val_miou" in needs and SCALAR not in ev.scalars)


def _ordered(names: Collection[str]) -> list[str]:
    return [n for n in VALIDATORS if n in set(names)]


def evidence_scores(
    evidence: Sequence[Evidence],
    names: Collection[str] | None = None,
    *,
    chunk_images: int = 32,
    snd_chunk: int = 1024,
    atc_score: str = "neg_entropy",
    mixval_average: str = "pixel",
) -> pd.DataFrame:
    """Evidence-based scores of a vote group's candidates (index: candidate ids, in the given order).

    ``names``: the validators to compute (default: every evidence validator all files support;
    asking for one a file cannot support raises EvidenceError naming the file). ``ensv`` needs
    at least 2 candidates. Images are processed ``chunk_images`` at a time (float32 copies).
    """
    if not evidence:
        raise SelectionError("no evidence to score")
    check_same_sampling(evidence)
    if names is None:
        names = [n for n in EVIDENCE_VALIDATORS if all(_supported(ev, n) for ev in evidence)]
        if len(evidence) < 2:
            names = [n for n in names if n != "ensv"]
    unknown = [n for n in names if n not in EVIDENCE_VALIDATORS]
    if unknown:
        raise SelectionError(
            f"not evidence validators: {unknown}; these are: {', '.join(EVIDENCE_VALIDATORS)}"
        )
    for n in names:
        for ev in evidence:
            if not _supported(ev, n):
                raise EvidenceError(
                    f"evidence file {ev.uri} lacks what {n!r} needs ({sorted(VALIDATORS[n].needs)})"
                )
    names = _ordered(names)
    ids = [ev.candidate_id for ev in evidence]
    table = pd.DataFrame(index=pd.Index(ids, name="candidate_id"), columns=names, dtype=float)
    n_img = len(evidence[0].image_ids)
    chunks = [(a, min(a + chunk_images, n_img)) for a in range(0, n_img, max(1, chunk_images))]
    for ev in evidence:
        row: dict[str, float] = {}
        if set(names) & set(_INFO) or "snd" in names:
            stats = ProbabilityStats(ev.num_classes)
            density = SNDAccumulator(ev.settings.snd_temperature, snd_chunk)
            for a, b in chunks:
                block = ev.target_probs[a:b].astype(np.float32)
                if set(names) & set(_INFO):
                    stats.update(block)
                if "snd" in names:
                    density.update(block)
            row.update({n: getattr(stats, n) for n in _INFO if n in names})
            if "snd" in names:
                row["snd"] = density.value
        for n, fn in _MIX.items():
            if n in names:
                row[n] = fn(ev.mixval_counts, average=mixval_average)
        if "atc" in names:
            row["atc"] = atc(ev.target_probs, ev.source_probs, ev.source_labels, score=atc_score)
        if "source_val_miou" in names:
            row["source_val_miou"] = source_val_miou(ev.scalars)
        for n, v in row.items():
            table.loc[ev.candidate_id, n] = v
    if "ensv" in names:
        acc = SoftVoteAccumulator(len(evidence), evidence[0].num_classes)
        for a, b in chunks:
            acc.update(np.stack([ev.target_probs[a:b] for ev in evidence]))
        table["ensv"] = acc.scores
    return table


StackStream = Callable[[], Iterable[tuple[str, np.ndarray]]]


def label_scores(
    stacks: StackStream,
    ids: Sequence[str],
    num_classes: int,
    *,
    neighbour_ids: Mapping[str, Collection[str]],
    trim_rule: TrimRule | None = DEFAULT_TRIM_RULE,
    ignore_index: int = IGNORE_INDEX,
) -> pd.DataFrame:
    """f_miou, f_miou_trimmed and f_miou_lno of a vote group from its label maps.

    ``stacks()`` returns a fresh stream of (image_id, (n, H, W) stack) in ``ids`` order; it is
    called once, or twice when ``trim_rule`` flags degenerate candidates (then f_miou_trimmed is
    F-mIoU against the vote without them, as in :mod:`selection.plan`). ``table.attrs`` records
    the degenerate ids and the leave-out mode ("neighbours" or "one").
    """
    ids = list(ids)
    exclude, mode = leave_out(ids, neighbour_ids)
    fusion = FusionAccumulator(len(ids), num_classes, ignore_index, pairwise=False, names=ids)
    lno = LeaveNeighboursOut(len(ids), num_classes, exclude, ignore_index, names=ids)
    for image_id, stack in stacks():
        fusion.update(stack, image_id)
        lno.update(stack, image_id)
    f = fusion.f_miou
    degenerate = find_degenerate(dict(zip(ids, f.tolist(), strict=True)), trim_rule) if trim_rule else []
    trimmed = f
    if degenerate:
        voters = [k for k, i in enumerate(ids) if i not in set(degenerate)]
        second = FusionAccumulator(
            len(ids), num_classes, ignore_index, voters=voters, pairwise=False, names=ids
        )
        for image_id, stack in stacks():
            second.update(stack, image_id)
        trimmed = second.f_miou
    table = pd.DataFrame(
        {"f_miou": f, "f_miou_trimmed": trimmed, "f_miou_lno": lno.scores},
        index=pd.Index(ids, name="candidate_id"),
    )
    table.attrs.update(degenerate=list(degenerate), leave_out=mode)
    return table


def replicate_scores(
    replicate_uris: Mapping[str, Sequence[str | os.PathLike[str]]],
    subset_ids: Sequence[str],
    num_classes: int,
) -> pd.Series:
    """seed_agreement per candidate from its replicates' predictions files (NaN with fewer than 2)."""
    out = {}
    for cid, uris in replicate_uris.items():
        if len(uris) < 2:
            out[cid] = float("nan")
            continue
        members = {f"{cid}#r{k}": os.fspath(u) for k, u in enumerate(uris)}
        stream = (s for _, s in stream_stacks(members, subset_ids, num_classes=num_classes))
        out[cid] = seed_agreement(stream, num_classes)
    return pd.Series(out, name="seed_agreement", dtype=float)


def group_table(
    candidates: Sequence[Candidate],
    group: str,
    *,
    evidence_uris: Mapping[str, str | os.PathLike[str]],
    prediction_uris: Mapping[str, str | os.PathLike[str]],
    subset_ids: Sequence[str],
    num_classes: int,
    settings: EvidenceSettings | None = None,
    replicate_uris: Mapping[str, Sequence[str | os.PathLike[str]]] | None = None,
    trim_rule: TrimRule | None = DEFAULT_TRIM_RULE,
) -> pd.DataFrame:
    """Every computable validator for the candidates of vote group ``group`` (rows in group order)."""
    ids = vote_groups(candidates)[group] if group in vote_groups(candidates) else None
    if ids is None:
        raise SelectionError(f"no vote group {group!r}")
    missing = [i for i in ids if i not in evidence_uris or i not in prediction_uris]
    if missing:
        raise SelectionError(f"vote group {group!r}: no evidence or predictions file for {missing}")
    evidence = [
        read_evidence(
            evidence_uris[i],
            candidate_id=i,
            num_classes=num_classes,
            subset_ids=subset_ids,
            settings=settings,
        )
        for i in ids
    ]
    table = evidence_scores(evidence)
    uris = {i: os.fspath(prediction_uris[i]) for i in ids}

    def stacks() -> Iterable[tuple[str, np.ndarray]]:
        return stream_stacks(uris, subset_ids, num_classes=num_classes)

    labels = label_scores(
        stacks, ids, num_classes, neighbour_ids=neighbours(candidates, group), trim_rule=trim_rule
    )
    table = labels.join(table)
    if replicate_uris:
        table = table.join(
            replicate_scores(
                {i: replicate_uris[i] for i in ids if i in replicate_uris}, subset_ids, num_classes
            )
        )
    table = table[_ordered(table.columns)].copy()
    table.attrs = dict(labels.attrs)  # pandas does not carry attrs through join
    return table
