"""Typed, validated configuration of the method: data, model, warm-up, IAS, HPLA, losses, rounds.

One YAML file describes a run (see ``configs/``). Every section is a small pydantic model with
explicit ranges, so a bad value fails at load time with the field's dotted path and what was
expected, before any data is read or any GPU time is spent. The same file's ``selection`` and
``ray`` sections belong to the search job, whose config (``ray_jobs.config.JobConfig``) extends
this one with them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ConfigError",
    "DatasetSpec",
    "SourceValHoldout",
    "SynthscapeSpec",
    "DataConfig",
    "ModelConfig",
    "WarmupConfig",
    "IASConfig",
    "HPLAConfig",
    "LossConfig",
    "SelfTrainConfig",
    "HIASTConfig",
    "JOB_SECTIONS",
    "stored_config",
    "TUNABLE_PARAMETERS",
    "DEFAULT_CONFIG",
    "packaged_configs",
    "resolve_config",
    "load_config",
    "parse_overrides",
]


# The shipped configs: package data of hiast (hiast/configs links to the top-level configs/ folder),
# so they are found the same way in a wheel, an editable install and a plain checkout.
_CONFIG_DIR: Traversable = files("hiast") / "configs"
DEFAULT_CONFIG: Traversable = _CONFIG_DIR / "synthscape.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthscapeSpec(_Strict):
    """The embedded, procedurally generated street-scene benchmark (no files)."""

    image_size: tuple[int, int] = (64, 128)
    n_source_train: int = Field(240, ge=1)
    n_source_val: int = Field(60, ge=1)
    n_target_train: int = Field(240, ge=1)
    n_target_val: int = Field(60, ge=1)
    shift: float = Field(1.0, ge=0.0, le=2.0, description="size of the source->target camera gap")
    seed: int = 0
    hard_class_rate: float = Field(
        1.0, ge=0.0, le=4.0, description="scales how many poles (with signs) and people a scene holds"
    )
    target_hard_class_rate: float = Field(
        1.0,
        ge=0.0,
        le=4.0,
        description="extra factor on hard_class_rate in the target domain only (a label shift)",
    )
    palette: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="share of the target palette in target class colours (the systematic part of "
        "the gap); None: min(1, 0.45 shift)",
    )
    lookalike: float = Field(
        0.0, ge=0.0, le=1.0, description="share of the road's colour in target sidewalks (look-alike classes)"
    )
    cache: bool = Field(
        False,
        description="keep each generated split in a node-local cache (the system temp folder, or "
        "HIAST_SYNTHSCAPE_CACHE), so every process that needs it need not draw it again",
    )

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 16 or v[1] < 16 or v[0] % 8 or v[1] % 8:
            raise ValueError("image_size must be (H, W), each >= 16 and a multiple of 8")
        return v

    def generator_options(self, domain: str) -> dict[str, float | None]:
        """The generator knobs of one domain, as ``SynthscapeDataset`` keyword arguments."""
        rate = self.hard_class_rate * (self.target_hard_class_rate if domain == "target" else 1.0)
        return {"hard_class_rate": rate, "palette": self.palette, "lookalike": self.lookalike}


class DatasetSpec(_Strict):
    """One split of one dataset on disk (or of synthscape)."""

    name: Literal["synthscape", "gta5", "synthia", "cityscapes", "robotcar"]
    split: str = "train"
    root: Path | None = None
    # HIAST-format JSON list [{"image_name": ..., "mask_name": ...}] resolved against root.
    list_file: Path | None = None
    # cityscapes only: which label files to read.
    label_format: Literal["labelIds", "labelTrainIds"] = "labelIds"
    # cityscapes only: 19 trainIds, or the 9 RobotCar classes (Cityscapes -> Oxford scenario).
    class_set: Literal["cityscapes19", "robotcar9"] = "cityscapes19"
    # synthscape only: which domain.
    domain: Literal["source", "target"] | None = None
    limit: int | None = Field(None, ge=1, description="use only the first N images (sorted)")

    @model_validator(mode="after")
    def _root_needed(self) -> DatasetSpec:
        if self.name == "synthscape":
            if self.domain is None:
                raise ValueError("synthscape datasets need domain: source or target")
        elif self.root is None:
            raise ValueError(f"dataset {self.name!r} needs a root folder")
        return self


class SourceValHoldout(_Strict):
    """The labelled source-val split held out of ``data.source`` when no ``data.source_val`` is
    given (hiast.data.holdout): round(fraction x N) images, at most ``max_images``, chosen by a
    seeded hash of each id. The default suits GTA5 (499 of its 24,966 images)."""

    fraction: float = Field(0.02, gt=0.0, le=0.5)
    max_images: int = Field(500, ge=1)
    seed: int = 0


class DataConfig(_Strict):
    num_classes: int = Field(19, ge=2, le=254)
    # Classes averaged in the reported mIoU (mIoU-16/13/9 lists, or synthscape's 9 classes).
    eval_classes: list[int] | None = None
    source: DatasetSpec
    target: DatasetSpec
    source_val: DatasetSpec | None = None
    # Source labels exist in UDA: without an explicit source_val, one is held out of the source
    # (never trained on) so the source-side validators can run. null turns that off; an explicit
    # source_val always wins.
    source_val_holdout: SourceValHoldout | None = SourceValHoldout()
    target_val: DatasetSpec | None = None
    synthscape: SynthscapeSpec = SynthscapeSpec()
    # Training crops: the height of a random crop is drawn from these ranges, then resized to crop_size.
    crop_size: tuple[int, int] = (64, 128)
    source_crop_height: tuple[int, int] = (40, 64)
    target_crop_height: tuple[int, int] = (40, 64)
    # Size at which pseudo-labels are generated, predictions made and mIoU evaluated (None: native).
    eval_size: tuple[int, int] | None = None
    num_loader_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _classes(self) -> DataConfig:
        for c in self.eval_classes or []:
            if not 0 <= c < self.num_classes:
                raise ValueError(f"eval_classes holds {c}, outside 0..{self.num_classes - 1}")
        for name in ("source_crop_height", "target_crop_height"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        return self


class ModelConfig(_Strict):
    arch: Literal["deeplab_v2", "deeplab_v2_small"] = "deeplab_v2_small"
    # Local path to torchvision-format ResNet weights (never downloaded).
    pretrained_backbone: Path | None = None
    width: int = Field(16, ge=4, description="base width of the small variant")


class WarmupConfig(_Strict):
    source_iters: int = Field(400, ge=0)
    adversarial_iters: int = Field(200, ge=0)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    discriminator_lr: float = Field(1e-4, gt=0)
    adversarial_weight: float = Field(0.01, ge=0)
    # Path to a finished warm-up checkpoint: skip the warm-up and start from it.
    checkpoint: Path | None = None


class IASConfig(_Strict):
    alpha: float = Field(0.5, gt=0.0, le=1.0)
    beta: float = Field(0.9, ge=0.0, lt=1.0)
    gamma: float = Field(8.0, ge=0.0)
    init_threshold: float = Field(0.9, gt=0.0, lt=1.0)
    variant: Literal["paper", "public_code"] = "paper"


class HPLAConfig(_Strict):
    enabled: bool = True
    k: int = Field(14, ge=1)


class LossConfig(_Strict):
    lambda_i: float = Field(1.0, ge=0.0)
    lambda_c: float = Field(0.1, ge=0.0)
    lambda_cst: float = Field(0.5, ge=0.0)
    # "paper": per-pixel means; "public_code": the released code's extra 1/C on R_c, R_i and R_cst.
    normalization: Literal["paper", "public_code"] = "paper"


class SelfTrainConfig(_Strict):
    rounds: int = Field(3, ge=1)
    iters_per_round: int = Field(8000, ge=1)
    batch_size: int = Field(6, ge=1)
    lr: float = Field(3e-5, gt=0)
    head_lr_mult: float = Field(10.0, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    tau: float = Field(0.999, ge=0.0, lt=1.0)
    # Freeze BN affine parameters and running statistics (the paper). False lets statistics update:
    # a known way to make self-training collapse, kept reachable for the selection to avoid.
    freeze_bn: bool = True
    bf16: bool = False
    channels_last: bool = False


# The hyperparameters a selection may vary, with the config section each lives in.
TUNABLE_PARAMETERS: dict[str, tuple[str, str]] = {
    "alpha": ("ias", "alpha"),
    "beta": ("ias", "beta"),
    "gamma": ("ias", "gamma"),
    "lambda_i": ("loss", "lambda_i"),
    "lambda_c": ("loss", "lambda_c"),
    "lambda_cst": ("loss", "lambda_cst"),
    "k": ("hpla", "k"),
}


class HIASTConfig(_Strict):
    experiment: str = "hiast"
    seed: int = 0
    data: DataConfig
    model: ModelConfig = ModelConfig()
    warmup: WarmupConfig = WarmupConfig()
    ias: IASConfig = IASConfig()
    hpla: HPLAConfig = HPLAConfig()
    loss: LossConfig = LossConfig()
    selftrain: SelfTrainConfig = SelfTrainConfig()

    @field_validator("experiment")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or not all(ch.isalnum() or ch in "-_." for ch in v):
            raise ValueError("experiment must be non-empty letters, digits, '-', '_' or '.'")
        return v

    def parameters(self) -> dict[str, float]:
        """The current value of every tunable parameter."""
        return {
            name: getattr(getattr(self, section), field)
            for name, (section, field) in TUNABLE_PARAMETERS.items()
        }

    def with_parameters(self, params: dict[str, Any]) -> Self:
        """A copy with some tunable parameters replaced, validated like a loaded file."""
        raw = self.model_dump(mode="python")
        for name, value in params.items():
            if name not in TUNABLE_PARAMETERS:
                raise ConfigError(
                    f"unknown parameter {name!r}; allowed: {', '.join(sorted(TUNABLE_PARAMETERS))}"
                )
            section, field = TUNABLE_PARAMETERS[name]
            if name == "k":
                try:
                    integral = float(value) == int(value)
                except (TypeError, ValueError, OverflowError):
                    integral = False
                if not integral:
                    raise ConfigError(f"hpla.k must be an integer, got {value!r}")
                value = int(value)
            raw[section][field] = value
        try:
            return type(self).model_validate(raw)
        except ValidationError as e:
            raise ConfigError(_format_errors(e, "")) from None


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        msg = e["msg"].removeprefix("Value error, ")
        # A check that names its own field (a cross-field one, or one written elsewhere) says it once.
        lines.append(f"{msg}{got_s}" if msg.startswith(loc) or not e["loc"] else f"{loc}: {msg}{got_s}")
    where = f"{source}: " if source else ""
    return where + "invalid configuration\n  " + "\n  ".join(lines)


def packaged_configs() -> dict[str, Traversable]:
    """The configs shipped with the package, by name (``gta5_to_cityscapes``), sorted."""
    found = {f.name.removesuffix(".yaml"): f for f in _CONFIG_DIR.iterdir() if f.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def resolve_config(config: str | os.PathLike[str] | Traversable | None) -> Traversable:
    """The file a ``--config`` value names: a path to a YAML file, or the name of a packaged config.

    ``None`` is the embedded default. A path that exists wins over a packaged name; a bare name
    (no folder) that is not a file is looked up among the packaged configs, with or without
    ``.yaml``. Raises ConfigError listing the packaged names when neither matches.
    """
    if config is None:
        return DEFAULT_CONFIG
    if not isinstance(config, str | os.PathLike):
        return config  # already a packaged resource
    path = Path(config)
    if path.is_file():
        return path
    packaged = packaged_configs()
    name = path.name.removesuffix(".yaml")
    if path.name == str(config) and name in packaged:
        return packaged[name]
    raise ConfigError(
        f"{config}: config file not found (not a file, nor a packaged config: {', '.join(packaged)})"
    )


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["selftrain.iters_per_round=10", ...]`` (the CLIs' ``--set``) as :func:`load_config`'s
    ``overrides``: dotted key to value, the value read as YAML (``[0.1, 0.5]``, ``null``, ``true``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value with a dotted key, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key.strip()}: the value is not valid YAML: {e}") from None
    return out


# A run's YAML also configures the search around the method: sections the job (``ray_jobs.config``)
# reads and checks. Loading only the method's config passes over them.
JOB_SECTIONS = ("selection", "ray")

Config = TypeVar("Config", bound=HIASTConfig)


def stored_config(raw: dict[str, Any]) -> HIASTConfig:
    """The method's config from a stored dump (a checkpoint's ``config``), which carries the job's
    sections when the job wrote it; they are the job's to read."""
    return HIASTConfig.model_validate({k: v for k, v in raw.items() if k not in JOB_SECTIONS})


def load_config(
    path: str | os.PathLike[str] | Traversable | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    model: type[Config] = HIASTConfig,
) -> Config:
    """Load and validate a YAML config; ``None`` loads the embedded default (synthscape).

    ``path``: a YAML file, or a packaged config's name (see :func:`resolve_config`).
    ``overrides`` maps dotted paths (``"selftrain.iters_per_round"``) to values. ``model``: the
    config class to validate against (a subclass adds the job's sections; without them, the
    file's ``selection`` and ``ray`` sections are left to the job, and overriding one is an error).
    Raises ConfigError naming the file and every offending field.
    """
    path = resolve_config(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror or e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    skipped = [k for k in JOB_SECTIONS if k not in model.model_fields]
    for dotted, value in (overrides or {}).items():
        if dotted.split(".")[0] in skipped:
            raise ConfigError(f"{dotted}: read by the search job (hiast-select), not by this command")
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: override {dotted!r}: {p!r} is not a section")
        node[leaf] = value
    raw = {k: v for k, v in raw.items() if k not in skipped}
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, str(path))) from None
