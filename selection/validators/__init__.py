"""Label-free validators: one small pure function each, with its direction, in a registry.

=================  =====  =====  =========================  ======================================
name               dir.   scope  needs                      module
=================  =====  =====  =========================  ======================================
f_miou             high   group  labels                     :mod:`selection.fusion.majority` (paper §4.5)
f_miou_trimmed     high   group  labels                     :mod:`selection.decision.trimming` + vote pass
ensv               high   group  target_probs               :mod:`.consensus`
f_miou_lno         high   group  labels                     :mod:`.consensus`
mixval(_inter/     high   self   mixval (+1 pass)           :mod:`.mixval`
  _intra)
atc                high   self   target/source_probs        :mod:`.atc`
snd                high   self   target_probs               :mod:`.density`
im, bnm,           high   self   target_probs               :mod:`.information`
  mean_confidence
mean_entropy       low    self   target_probs               :mod:`.information`
seed_agreement     high   self   replicates (+trainings)    :mod:`.agreement`
source_val_miou    high   self   source_val_miou            :mod:`.source`
dev, iwcv          low    self   target/source_probs        :mod:`.dev` (fitted when written)
=================  =====  =====  =========================  ======================================

Each module's docstring gives the source (paper, reference code) and every adaptation to
segmentation. :data:`VALIDATORS` is the registry (:class:`ValidatorSpec`), the one registry of
label-free scores in the project (scores computed elsewhere come as :class:`ScoreValues`);
:mod:`.streaming` accumulates the evidence validators over image chunks; :mod:`.evidence` is the
per-candidate evidence file they read (written by each candidate's worker, which also computes SND
and DEV into it). :mod:`selection.run.validator_table` builds a vote group's table of all of them
(the vote pass of :func:`selection.run.run_selection` computes them); :mod:`selection.decision.rules`
picks from such a table.
"""

from selection.validators.agreement import seed_agreement
from selection.validators.atc import atc, atc_per_class
from selection.validators.consensus import (
    LeaveNeighboursOut,
    SoftVoteAccumulator,
    ensv,
    f_miou,
    f_miou_lno,
    leave_out,
    neighbours,
)
from selection.validators.density import SNDAccumulator, snd
from selection.validators.dev import dev, iwcv
from selection.validators.evidence import (
    Evidence,
    EvidenceError,
    EvidenceSettings,
    EvidenceWriter,
    mixval_pairs,
    read_evidence,
)
from selection.validators.information import ProbabilityStats, bnm, im, mean_confidence, mean_entropy
from selection.validators.mixval import mixval, mixval_counts, mixval_inter, mixval_intra
from selection.validators.registry import NEEDS, VALIDATORS, ScoreValues, ValidatorSpec, direction, validator
from selection.validators.source import source_val_miou
from selection.validators.streaming import (
    EVIDENCE_VALIDATORS,
    EvidenceAccumulator,
    evidence_scores,
    open_evidence,
)

__all__ = [
    "NEEDS",
    "VALIDATORS",
    "ValidatorSpec",
    "validator",
    "ScoreValues",
    "direction",
    "Evidence",
    "EvidenceError",
    "EvidenceSettings",
    "EvidenceWriter",
    "read_evidence",
    "mixval_pairs",
    "f_miou",
    "ensv",
    "SoftVoteAccumulator",
    "f_miou_lno",
    "LeaveNeighboursOut",
    "neighbours",
    "leave_out",
    "mixval",
    "mixval_inter",
    "mixval_intra",
    "mixval_counts",
    "atc",
    "atc_per_class",
    "snd",
    "dev",
    "iwcv",
    "SNDAccumulator",
    "im",
    "bnm",
    "mean_entropy",
    "mean_confidence",
    "ProbabilityStats",
    "seed_agreement",
    "source_val_miou",
    "EVIDENCE_VALIDATORS",
    "EvidenceAccumulator",
    "open_evidence",
    "evidence_scores",
]
