"""The train stage and what it reports: candidates trained per regime and seed, the regimes drawn at
random, the landscapes' report and the requirements they are checked against.
"""

from __future__ import annotations

from selection_bench.landscapes.checks import MIN_GAIN, MIN_SPREAD, check_requirements, requirements_markdown
from selection_bench.landscapes.drawn import (
    DistributionError,
    draw_knobs,
    drawn_config,
    read_distribution,
    write_drawn,
)
from selection_bench.landscapes.report import markdown, plot, summarise, summarise_regime, summarise_sweep
from selection_bench.landscapes.train import check_regime_folder, run_candidate_job, run_warmup_job, train_all

__all__ = [
    "DistributionError",
    "MIN_GAIN",
    "MIN_SPREAD",
    "check_regime_folder",
    "check_requirements",
    "draw_knobs",
    "drawn_config",
    "markdown",
    "plot",
    "read_distribution",
    "requirements_markdown",
    "run_candidate_job",
    "run_warmup_job",
    "summarise",
    "summarise_regime",
    "summarise_sweep",
    "train_all",
    "write_drawn",
]
