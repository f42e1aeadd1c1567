"""Single-process command line: ``python -m hiast {run,warmup,train,predict,check-data,evaluate} ...``.

Examples::

    python -m hiast run --out runs/demo                       # synthscape: warm-up, 3 rounds, eval
    python -m hiast warmup --config gta5_to_cityscapes --out runs/gta
    python -m hiast train --config my.yaml --warmup runs/gta/warmup.pt --out runs/gta/alpha0.5
    python -m hiast predict --checkpoint runs/gta/round3.pt --images list.txt --out preds/
    python -m hiast predict --checkpoint runs/gta/round3.pt --format cityscapes --color \
        --images cityscapes/leftImg8bit/test --out results/    # for the Cityscapes benchmark server
    python -m hiast evaluate --checkpoint runs/demo/round3.pt --split target_val
    python -m hiast check-data --config my_gta5.yaml --full      # every dataset file, before a run

--config takes a YAML file or the name of a packaged config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from hiast.checkpoint import CheckpointError
from hiast.config import (
    ConfigError,
    HIASTConfig,
    load_config,
    packaged_configs,
    parse_overrides,
    stored_config,
)
from hiast.data import DatasetError, build_dataset
from hiast.data.base import Sample, SegDataset
from hiast.data.classes import CITYSCAPES19_PALETTE, ROBOTCAR9_PALETTE, colorize
from hiast.data.holdout import HELD_OUT_CHECK, SPLITS, build_split, source_split
from hiast.pipeline import evaluate, evaluate_splits, load_model, predict_labels, run_warmup, train_rounds
from hiast.predict import cityscapes_name, write_cityscapes_result, write_png

__all__ = ["main"]


def _config(args: argparse.Namespace) -> HIASTConfig:
    return load_config(args.config, parse_overrides(args.set))


class _ImageList(SegDataset):
    """Images named in a text file (one path a line) or found in a folder, unlabeled."""

    def __init__(self, source: Path, num_classes: int) -> None:
        if source.is_dir():
            paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        elif source.is_file():
            paths = [Path(line.strip()) for line in source.read_text().splitlines() if line.strip()]
        else:
            raise DatasetError(f"{source}: no such image folder or list file")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DatasetError(f"{source}: listed images not found: {', '.join(missing[:5])}")
        if not paths:
            raise DatasetError(f"{source}: no images")
        self.paths = paths
        self.ids = [str(p) for p in paths]
        self.num_classes, self.has_labels, self.name = num_classes, False, str(source)

    def load(self, i: int) -> Sample:
        try:
            image = np.asarray(Image.open(self.paths[i]).convert("RGB"))
        except OSError as e:
            raise DatasetError(f"{self.paths[i]}: cannot read image ({e})") from None
        return Sample(self.ids[i], image, None)


def _cmd_warmup(args: argparse.Namespace) -> None:
    cfg = _config(args)
    path = run_warmup(cfg, Path(args.out), device=args.device, progress=True)
    print(path)


def _cmd_train(args: argparse.Namespace) -> None:
    cfg = _config(args)
    path = train_rounds(
        cfg, Path(args.warmup), Path(args.out), device=args.device, resume_from=args.resume, progress=True
    )
    print(path)


def _cmd_run(args: argparse.Namespace) -> None:
    cfg = _config(args)
    out = Path(args.out)
    warm = run_warmup(cfg, out, device=args.device, progress=True)
    model = load_model(warm, args.device)
    report = {"warmup": evaluate_splits(model, cfg, device=args.device)}
    logging.getLogger("hiast").info("warm-up: %s", json.dumps(report["warmup"]))
    last = train_rounds(cfg, warm, out, device=args.device, progress=True)
    report["hiast"] = evaluate_splits(load_model(last, args.device), cfg, device=args.device)
    logging.getLogger("hiast").info("after self-training: %s", json.dumps(report["hiast"]))
    _atomic_write(out / "report.json", json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items()}, indent=2))


def _cmd_predict(args: argparse.Namespace) -> None:
    from hiast.checkpoint import load_checkpoint

    num_classes = stored_config(load_checkpoint(args.checkpoint)["config"]).data.num_classes
    ds = _ImageList(Path(args.images), num_classes=num_classes)
    out = Path(args.out)
    if args.format == "cityscapes":
        if num_classes != len(CITYSCAPES19_PALETTE):
            raise ConfigError(
                f"{args.checkpoint}: --format cityscapes needs a model of the 19 Cityscapes classes; "
                f"this one predicts {num_classes}"
            )
        names = {sid: cityscapes_name(sid) for sid in ds.ids}  # every name checked before predicting
        stems = [n.stem for n in names.values()]
        if len(set(stems)) != len(stems):
            twice = sorted({s for s in stems if stems.count(s) > 1})
            raise DatasetError(f"{args.images}: several images are named {', '.join(twice[:5])}")
    palette = {19: CITYSCAPES19_PALETTE, 9: ROBOTCAR9_PALETTE}.get(num_classes)
    if args.color and palette is None:
        raise ConfigError(f"--color: no palette for a {num_classes}-class model (19 or 9 classes only)")
    model = load_model(args.checkpoint, args.device)
    out.mkdir(parents=True, exist_ok=True)
    for sid, label in predict_labels(model, ds, device=args.device):
        if args.format == "cityscapes":
            write_cityscapes_result(label, names[sid], out, color=args.color)
            continue
        write_png(out / (Path(sid).stem + "_pred.png"), label)
        if args.color:
            write_png(out / (Path(sid).stem + "_pred_color.png"), colorize(label, palette))
    print(out / "labelIds" if args.format == "cityscapes" else out)


def _cmd_check_data(args: argparse.Namespace) -> None:
    cfg = _config(args)
    for split in SPLITS:
        spec = getattr(cfg.data, split)
        if spec is None:
            continue
        try:
            dataset = build_dataset(spec, cfg.data)
            dataset.verify(full=args.full)
        except DatasetError as e:
            raise DatasetError(f"data.{split}: {e}") from None
        print(f"data.{split}: ok")
        # The held-out split's files were checked with data.source's; left: do its sizes work.
        parts = source_split(cfg, dataset.ids) if split == "source" else None
        if parts is not None:
            print(
                f"{HELD_OUT_CHECK}: ok, {len(parts.held_out)} of {parts.source_size} images held out, "
                f"{len(parts.train)} left to train on"
            )


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from hiast.checkpoint import load_checkpoint

    cfg = stored_config(load_checkpoint(args.checkpoint)["config"])
    if args.config:
        cfg = _config(args)
    dataset = build_split(cfg.data, args.split)  # source_val: the explicit split or the held-out one
    if dataset is None:
        raise ConfigError(f"data.{args.split} is not set in the config (nor held out of data.source)")
    model = load_model(args.checkpoint, args.device)
    result = evaluate(
        model,
        dataset,
        num_classes=cfg.data.num_classes,
        eval_classes=cfg.data.eval_classes,
        size=cfg.data.eval_size,
        device=args.device,
    )
    print(json.dumps(result, indent=2))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    names = ", ".join(packaged_configs())
    config_help = f"a YAML file, or a packaged config: {names} (default: synthscape)"
    parser = argparse.ArgumentParser(
        prog="hiast",
        description=__doc__,
        epilog=f"packaged configs (--config NAME): {names}",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            p.add_argument("--config", help=config_help)
            p.add_argument(
                "--set",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="override a config field, e.g. --set selftrain.iters_per_round=10",
            )
        p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")

    p = sub.add_parser("run", help="warm-up, self-training rounds and evaluation")
    common(p)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_cmd_run)
    p = sub.add_parser("warmup", help="source-only + adversarial warm-up")
    common(p)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_cmd_warmup)
    p = sub.add_parser("train", help="self-training rounds from a warm-up checkpoint")
    common(p)
    p.add_argument("--warmup", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--resume", help="a round checkpoint to continue from")
    p.set_defaults(fn=_cmd_train)
    p = sub.add_parser(
        "predict",
        help="predict label maps for a folder or a list of images",
        description="Predict a label map for every image (at its own size).\n\n"
        "--format plain: <out>/<name>_pred.png holding class indices (trainIds).\n"
        "--format cityscapes: <out>/labelIds/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png holding\n"
        "  Cityscapes labelIds, as the benchmark server and cityscapesScripts' evaluation read them\n"
        "  (point CITYSCAPES_RESULTS at <out>/labelIds, or zip that folder); images must be named\n"
        "  <city>_<seq>_<frame>_leftImg8bit.png.\n"
        "--color: also a colour picture of each map (cityscapes: under <out>/color/).",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    common(p, config=False)
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--images",
        required=True,
        help="a folder (searched recursively), or a text file with one image path a line",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=["plain", "cityscapes"], default="plain", help="file names and ids")
    p.add_argument("--color", action="store_true", help="also write colour pictures")
    p.set_defaults(fn=_cmd_predict)
    p = sub.add_parser(
        "check-data",
        help="check the config's dataset files before a run",
        description="Every split the config names: listing, image/label pairing, every file's header "
        "and a few decoded files;\n--full decodes every file (spread over the machine's cores).",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    common(p)
    p.add_argument("--full", action="store_true", help="decode every image and label file")
    p.set_defaults(fn=_cmd_check_data)
    p = sub.add_parser("evaluate", help="mIoU of a checkpoint on a labeled split")
    common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="target_val", choices=["source_val", "target_val"])
    p.set_defaults(fn=_cmd_evaluate)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        args.fn(args)
    except (ConfigError, DatasetError, FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
