"""From a vote group's validator table to a pick, and what speaks for or against trusting it.

* :mod:`.rules` — the rule grammar (``selection.rule``) and the pick from a validator table;
* :mod:`.trimming` — degenerate (far-from-the-vote) candidates left out of the second vote;
* :mod:`.guard` — broken candidates, never picked;
* :mod:`.centre_bias` — whether a sweep's vote prefers the centre of its line;
* :mod:`.families` — independent families of validators (source-side, information, consensus);
* :mod:`.confidence` — how much to trust a pick;
* :mod:`.audit` — label-free scores against true mIoU, where labels exist (audit only).
"""

from selection.decision.audit import kendall_tau_b, spearman, summarize_audit
from selection.decision.centre_bias import CentreBiasVerdict, Window, centre_bias_verdict, windows_for_line
from selection.decision.confidence import Confidence, GroupConfidence
from selection.decision.families import FAMILIES, family_picks
from selection.decision.rules import PAPER_RULE, Rule, all_picks, check_rule, parse_rule, rule_needs
from selection.decision.trimming import DEFAULT_TRIM_RULE, TrimRule, find_degenerate

__all__ = [
    "DEFAULT_TRIM_RULE",
    "FAMILIES",
    "PAPER_RULE",
    "CentreBiasVerdict",
    "Confidence",
    "GroupConfidence",
    "Rule",
    "TrimRule",
    "Window",
    "all_picks",
    "centre_bias_verdict",
    "check_rule",
    "family_picks",
    "find_degenerate",
    "kendall_tau_b",
    "parse_rule",
    "rule_needs",
    "spearman",
    "summarize_audit",
    "windows_for_line",
]
