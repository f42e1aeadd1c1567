"""Label-free hyperparameter selection for HIAST (paper §4.5), plus what consensus cannot see.

Pure numpy / torch / pyarrow / pandas; no Ray (the Ray jobs call into this package).

* :mod:`selection.fusion` — ``majority_vote``, ``f_miou``, ``FusionAccumulator`` (streaming, mergeable);
  back-ends :mod:`selection.fusion_numpy`, :mod:`selection.fusion_torch`; shared array helpers
  :mod:`selection.arrays`; candidate-vs-candidate agreement :mod:`selection.agreement`.
* :mod:`selection.subset` — the deterministic image subset and its JSON record.
* :mod:`selection.store` — per-candidate predictions files (Parquet via pyarrow.fs), streamed back.
* :mod:`selection.candidates` — sweep / grid candidates with stable ids.
* :mod:`selection.centre_bias`, :mod:`selection.trimming`, :mod:`selection.audit` — the
  diagnostics beside the scores; :mod:`selection.scores` — scores computed outside the selection.
* :mod:`selection.plan` — what one pass accumulates; :mod:`selection.run` — ``run_selection``, the
  one selection sequence (passes, pluggable chunk map, scoring steps of :mod:`selection.scoring`).
* :mod:`selection.evidence`, :mod:`selection.validators` (the one registry of label-free scores,
  ``VALIDATORS``), :mod:`selection.rules` — per-candidate evidence files, the validators, and the
  rules that pick from a group's validator table (:mod:`selection.validator_table`);
  :mod:`selection.confidence` — how much to trust a pick; :mod:`selection.sweeps` — per-sweep rankings.
* :mod:`selection.choice` — the typed ``Choice`` (``choice.json``); :mod:`selection.result` — the
  ``SelectionResult`` and its artefacts; :mod:`selection.tables` — the results table and writers.
* :mod:`selection.outcomes` — a search's trial outcomes to its table and choice (the vote actor's logic).
"""

from selection.audit import kendall_tau_b, spearman, summarize_audit
from selection.candidates import Candidate, Line, build_candidates, format_value, lines, vote_groups
from selection.centre_bias import CentreBiasVerdict, Window, centre_bias_verdict, windows_for_line
from selection.choice import CHOICE_SCHEMA_VERSION, Choice, load_choice
from selection.errors import PredictionStoreError, SelectionError
from selection.evidence import Evidence, EvidenceError, EvidenceSettings, EvidenceWriter, read_evidence
from selection.fusion import (
    IGNORE_INDEX,
    FusionAccumulator,
    PairwiseAgreement,
    f_miou,
    majority_vote,
)
from selection.outcomes import JobVote, Outcome, vote_outcomes, voting_candidates
from selection.plan import (
    HALVES,
    ChunkCounts,
    PlanAccumulator,
    VotePlan,
    accumulate,
    image_chunks,
    make_plan,
    merge_accumulators,
    merge_chunks,
    replicate_member_id,
)
from selection.result import SelectionResult
from selection.rules import PAPER_RULE, Rule, all_picks, check_rule, parse_rule
from selection.run import ChunkMap, accumulate_chunks, run_selection, score_from_accumulators
from selection.scores import ScoreValues
from selection.store import PredictionFile, PredictionWriter, read_predictions, stream_stacks
from selection.subset import load_subset, save_subset, select_subset, subset_hash
from selection.tables import build_results_table, write_json, write_parquet
from selection.trimming import TrimRule, find_degenerate
from selection.validators import VALIDATORS, ValidatorSpec

__all__ = [
    "IGNORE_INDEX",
    "SelectionError",
    "PredictionStoreError",
    # fusion
    "majority_vote",
    "f_miou",
    "FusionAccumulator",
    "PairwiseAgreement",
    # subset and store
    "select_subset",
    "subset_hash",
    "save_subset",
    "load_subset",
    "PredictionWriter",
    "PredictionFile",
    "read_predictions",
    "stream_stacks",
    # candidates and diagnostics
    "Candidate",
    "Line",
    "build_candidates",
    "format_value",
    "vote_groups",
    "lines",
    "Window",
    "CentreBiasVerdict",
    "windows_for_line",
    "centre_bias_verdict",
    "TrimRule",
    "find_degenerate",
    # scores and audit
    "VALIDATORS",
    "ValidatorSpec",
    "ScoreValues",
    "spearman",
    "kendall_tau_b",
    "summarize_audit",
    # running
    "VotePlan",
    "PlanAccumulator",
    "ChunkCounts",
    "HALVES",
    "make_plan",
    "accumulate",
    "merge_accumulators",
    "merge_chunks",
    "image_chunks",
    "replicate_member_id",
    "ChunkMap",
    "accumulate_chunks",
    "SelectionResult",
    "run_selection",
    "score_from_accumulators",
    "Choice",
    "CHOICE_SCHEMA_VERSION",
    "load_choice",
    "Outcome",
    "JobVote",
    "vote_outcomes",
    "voting_candidates",
    "build_results_table",
    "write_parquet",
    "write_json",
    # evidence, validators, rules
    "Evidence",
    "EvidenceError",
    "EvidenceSettings",
    "EvidenceWriter",
    "read_evidence",
    "Rule",
    "PAPER_RULE",
    "parse_rule",
    "check_rule",
    "all_picks",
]
