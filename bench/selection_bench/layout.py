"""The selection benchmark's regimes, candidates and work folder, and how later stages read it.

A *regime* is one full config file under ``bench/regimes/`` (its file stem is its name). Its
candidates are the sweep candidates of ``selection.parameters`` (``selection.build_candidates``,
ids such as ``default`` and ``alpha=0.3``) plus the :data:`BROKEN` candidates, the same in every
regime. A *seed* is one warm-up and one self-training seed; the data are fixed per regime.

Work folder (default ``bench/work/selection/``, not in git)::

    <work>/<regime>/regime.json                   the config every result below was trained with
    <work>/<regime>/seed<s>/warmup.pt             the seed's warm-up checkpoint
    <work>/<regime>/seed<s>/warmup.json           its target-val / source-val mIoU (written last)
    <work>/<regime>/seed<s>/pseudo_cache/         round-1 pseudo-labels candidates share
    <work>/<regime>/seed<s>/cand/<slug>/round<R>.pt   the candidate's final checkpoint
    <work>/<regime>/seed<s>/cand/<slug>/result.json   written last, atomically: the candidate is done

The scoring stage lists what is done with :func:`finished_candidates` (and the regime's grid with
:func:`regime_config`); each
:class:`FinishedCandidate` has its checkpoint (``hiast.pipeline.load_model`` reads it: the EMA
teacher, the model HIAST uses), its config (:meth:`FinishedCandidate.config`, to rebuild the
target and source-val datasets), its parameters, sweep membership, ``broken`` flag and truth.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiast.config import TUNABLE_PARAMETERS, ConfigError
from ray_jobs.config import JobConfig, load_job_config
from selection.candidates import build_candidates
from selection.filesystem import write_bytes_atomic

__all__ = [
    "BROKEN",
    "BrokenCandidate",
    "CandidateSpec",
    "DRAWN_PREFIX",
    "FinishedCandidate",
    "Regime",
    "candidate_config",
    "config_digest",
    "finished_candidates",
    "load_regime",
    "read_json",
    "regime_candidates",
    "regime_config",
    "seed_dir",
    "warmup_result",
    "write_json",
]

DRAWN_PREFIX = "drawn_"  # a regime drawn at random is bench/regimes/drawn_<i>.yaml (the draw stage)


@dataclass(frozen=True)
class BrokenCandidate:
    """A setting known to damage self-training; ``overrides`` maps dotted config paths to values."""

    id: str
    overrides: dict[str, Any]
    why: str


# Marked broken in the results only: the rules see them as ordinary candidates. Two per regime
# (the minimum): each costs a full candidate's training in every regime and seed.
BROKEN: tuple[BrokenCandidate, ...] = (
    BrokenCandidate(
        "broken:bn_updating",
        {"selftrain.freeze_bn": False},
        "BN statistics and affine parameters update on the strongly augmented target batches",
    ),
    BrokenCandidate(
        "broken:alpha=1,gamma=0",
        {"ias.alpha": 1.0, "ias.gamma": 0.0},
        "IAS keeps every pixel: plain arg-max self-training, every confident error reinforced",
    ),
)


@dataclass(frozen=True)
class Regime:
    name: str
    path: Path
    config: JobConfig


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate of a regime.

    ``params``: every tunable parameter's value. ``overrides``: further dotted config paths (broken
    candidates only). ``sweeps``: the sweeps it is a point of (the default is in all; broken
    candidates in none: they have no grid position, and a scorer adds them to every vote group).
    """

    id: str
    params: dict[str, float]
    sweeps: tuple[str, ...]
    broken: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    @property
    def slug(self) -> str:
        """Folder name: the id with ':' and ',' made file-name safe."""
        return self.id.replace(":", "-").replace(",", "_")


def load_regime(path: str | Path) -> Regime:
    """Load a regime file; it must be a full config with a sweep in ``selection.parameters``."""
    path = Path(path)
    cfg = load_job_config(path)
    if cfg.selection.mode != "sweep" or not cfg.selection.parameters:
        raise ConfigError(f"{path}: selection.mode must be 'sweep' with selection.parameters set")
    return Regime(path.stem, path, cfg)


def regime_candidates(cfg: JobConfig) -> list[CandidateSpec]:
    """Sweep candidates (``selection.build_candidates`` order), then the broken ones."""
    sweep = build_candidates(cfg.parameters(), cfg.selection.parameters, "sweep")
    out = [CandidateSpec(c.id, dict(c.params), tuple(c.sweeps)) for c in sweep]
    for b in BROKEN:
        params = dict(cfg.parameters())
        for dotted, value in b.overrides.items():
            for name, (section, fld) in TUNABLE_PARAMETERS.items():
                if dotted == f"{section}.{fld}":
                    params[name] = value
        out.append(CandidateSpec(b.id, params, (), True, dict(b.overrides), b.why))
    return out


def candidate_config(cfg: JobConfig, spec: CandidateSpec, seed: int) -> JobConfig:
    """The config a candidate trains with: its parameters and overrides applied, ``seed`` set."""
    c = cfg.with_parameters({k: v for k, v in spec.params.items() if k in TUNABLE_PARAMETERS})
    raw = c.model_dump(mode="python")
    for dotted, value in spec.overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise ConfigError(f"broken candidate {spec.id}: unknown config field {dotted!r}")
        node[leaf] = value
    raw["seed"] = seed
    return JobConfig.model_validate(raw)


def config_digest(cfg: JobConfig) -> str:
    """What training depends on: the config without ``experiment``, ``ray`` and ``selection`` (the grid and
    the subset), so adding grid values to a regime keeps the candidates already trained."""
    raw = cfg.model_dump(mode="json")
    raw.pop("experiment")
    raw.pop("selection")
    raw.pop("ray")
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def seed_dir(work: Path, regime: str, seed: int) -> Path:
    return Path(work) / regime / f"seed{seed}"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, json.dumps(data, indent=1, default=str).encode())


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable benchmark record ({e})") from None


def regime_config(work: str | Path, regime: str) -> JobConfig:
    """The regime's config as last trained under ``work`` (its grid: ``selection.parameters``;
    the subset size and seed the scorer should use: ``selection.subset_size``/``subset_seed``)."""
    return JobConfig.model_validate(read_json(Path(work) / regime / "regime.json")["config"])


def warmup_result(work: Path, regime: str, seed: int) -> dict[str, Any] | None:
    """The seed's warm-up record (target_val_miou, source_val_miou, checkpoint...), None if not done."""
    p = seed_dir(work, regime, seed) / "warmup.json"
    return read_json(p) if p.is_file() else None


@dataclass(frozen=True)
class FinishedCandidate:
    """A trained candidate as the scoring stage sees it (truth = true target-val mIoU)."""

    regime: str
    seed: int
    id: str
    checkpoint: Path
    params: dict[str, float]
    sweeps: tuple[str, ...]
    broken: bool
    truth: float
    source_val_miou: float
    warmup_truth: float
    record: dict[str, Any]

    def config(self) -> JobConfig:
        """The full config the candidate was trained with (its datasets, parameters and seed)."""
        return JobConfig.model_validate(self.record["config"])


def finished_candidates(
    work: str | Path, regime: str | None = None, seed: int | None = None
) -> list[FinishedCandidate]:
    """Every finished candidate under ``work`` (optionally one regime and/or seed), sorted by
    (regime, seed, training order). A candidate is finished when its ``result.json`` exists; its
    checkpoint must exist too (else ValueError naming it)."""
    out = []
    for res in _result_files(Path(work), regime, seed):
        r = read_json(res)
        ckpt = res.parent / r["checkpoint"]
        if not ckpt.is_file():
            raise ValueError(f"{res}: its checkpoint {ckpt} is missing")
        out.append(
            FinishedCandidate(
                regime=r["regime"],
                seed=int(r["seed"]),
                id=r["id"],
                checkpoint=ckpt,
                params=dict(r["params"]),
                sweeps=tuple(r["sweeps"]),
                broken=bool(r["broken"]),
                truth=float(r["target_val_miou"]),
                source_val_miou=float(r["source_val_miou"]),
                warmup_truth=float(r["warmup_target_val_miou"]),
                record=r,
            )
        )
    return sorted(out, key=lambda c: (c.regime, c.seed, c.record["order"]))


def _result_files(work: Path, regime: str | None, seed: int | None) -> Iterator[Path]:
    regimes = [work / regime] if regime is not None else sorted(p for p in work.iterdir() if p.is_dir())
    for rdir in regimes:
        seeds = [rdir / f"seed{seed}"] if seed is not None else sorted(rdir.glob("seed*"))
        for sdir in seeds:
            yield from sorted(sdir.glob("cand/*/result.json"))
