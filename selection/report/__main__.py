"""``python -m selection.report <storage>/<experiment>``: re-render ``dashboard.html`` from stored outputs.

Reads ``candidates.parquet``, ``choice.json`` and (if there) ``job_config.json`` from the folder
(a local path or a pyarrow.fs URI such as ``s3://bucket/hiast/gta5-to-cityscapes``) and writes the
page atomically, by default over ``<folder>/dashboard.html``. Needs neither Ray nor a GPU.
Exit status: 0 written; 2 the folder does not hold readable selection outputs (the message names
the file).
"""

from __future__ import annotations

import argparse
import sys

from selection.errors import SelectionError
from selection.report.stored import rerender


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m selection.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", help="experiment folder or URI: <storage>/<experiment>")
    p.add_argument("--out", help="where to write the page (default: <experiment>/dashboard.html)")
    p.add_argument(
        "--class-names",
        help="comma-separated class names in index order for the per-class table "
        "(the stored outputs hold indices only; default: 'class 0', 'class 1', ...)",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    try:
        target = rerender(args.experiment, args.out, class_names=names)
    except (SelectionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
