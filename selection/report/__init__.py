"""The selection dashboard: one self-contained HTML page that explains a label-free selection.

The Ray dashboard shows cluster state and TensorBoard training curves; neither can show *why* a
setting was picked, because F-mIoU exists only after the majority vote. This page does: per swept
parameter the score the vote picked with, the pick, true mIoU beside it when target labels exist
(audit only), the centre-bias warning, degenerate and failed candidates, the label-free scores
side by side, per-replicate values, agreement between candidates, per-class IoU, the run's settings.

It opens from an S3 download, an air-gapped laptop or a CI artifact: no scripts, no fonts, no
external references; charts are inline SVG drawn by the template, CSS is inlined.

* :func:`render_dashboard` / :func:`write_dashboard` — the page from a results table and a choice.
* ``python -m selection.report <storage>/<experiment>`` — re-render ``dashboard.html`` from the
  stored outputs (:mod:`selection.report.stored`), without Ray.

Layout: :mod:`~selection.report.inputs` (what is read, checked), :mod:`~selection.report.context`
(sections), :mod:`~selection.report.charts`, :mod:`~selection.report.heatmaps`,
:mod:`~selection.report.score_table`, ``templates/`` and ``static/`` (package data).
"""

from selection.report.context import CENTRE_BOUND_SENTENCE
from selection.report.inputs import as_names, finite
from selection.report.render import render_dashboard, write_dashboard
from selection.report.score_table import ScoreColumn, score_columns

__all__ = [
    "CENTRE_BOUND_SENTENCE",
    "ScoreColumn",
    "as_names",
    "finite",
    "render_dashboard",
    "score_columns",
    "write_dashboard",
]
