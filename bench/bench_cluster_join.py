"""What a job pays at start-up to clear placement groups that outlived their job.

``ray_jobs.cluster.remove_leaked_placement_groups`` runs once when a job joins an
existing cluster: two state-API listings (placement groups, jobs) through the dashboard. This
measures it on a local head (``tests/raytest/local_cluster.py``, 2 CPUs), in one driver, against
the baseline of that driver's ``ray.init`` (the connection every job makes anyway): on a cluster
with no groups (the first call is what a job pays: it imports the state API; then the median of
repeats), and with ``--groups`` live groups of this driver (listed, not leaked, so none is
removed).

    python bench/bench_cluster_join.py [--groups 20] [--repeat 5]   # ~1 min on 2 cores
    -> bench/results/cluster_join.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Test support (local clusters, injected faults) lives with the tests and is not shipped.
sys.path.insert(0, str(REPO / "tests"))

from raytest.local_cluster import LocalCluster  # noqa: E402

DRIVER = """
import json, statistics, sys, time
t0 = time.perf_counter()
import ray
ray.init(address="auto", logging_level="ERROR")
connect = time.perf_counter() - t0
from ray.util.placement_group import placement_group
from ray_jobs.cluster import remove_leaked_placement_groups

def timed(n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        removed = remove_leaked_placement_groups()
        out.append(time.perf_counter() - t)
        assert removed == [], removed  # nothing here has leaked: a removal would be a bug
    return out

repeat, groups = int(sys.argv[1]), int(sys.argv[2])
empty = timed(repeat)
pgs = [placement_group([{"CPU": 0.01}]) for _ in range(groups)]
ray.get([pg.ready() for pg in pgs])
with_groups = timed(repeat)
print(json.dumps({"connect_s": connect, "empty_s": empty, "with_groups_s": with_groups}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cluster_join.json")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cluster-join-"))
    cluster = LocalCluster(root)
    try:
        cluster.start_head(num_cpus=2)
        run = subprocess.run(
            [sys.executable, "-c", DRIVER, str(args.repeat), str(args.groups)],
            env=cluster.client_env(PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if run.returncode != 0:
            raise SystemExit(f"driver failed ({run.returncode}):\n{run.stderr[-4000:]}")
        raw = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    empty, full = statistics.median(raw["empty_s"]), statistics.median(raw["with_groups_s"])
    result = {
        "what": "remove_leaked_placement_groups() at job start (first call; median of repeats) vs ray.init",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "ray_init_s": round(raw["connect_s"], 3),
        # What a job pays: it calls it once, and the first call imports the state API.
        "cleanup_first_call_s": round(raw["empty_s"][0], 3),
        "ratio_first_call_to_ray_init": round(raw["empty_s"][0] / raw["connect_s"], 3),
        "cleanup_no_groups_s": round(empty, 3),
        f"cleanup_{args.groups}_groups_s": round(full, 3),
        "ratio_to_ray_init_no_groups": round(empty / raw["connect_s"], 3),
        f"ratio_to_ray_init_{args.groups}_groups": round(full / raw["connect_s"], 3),
        "raw": raw,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))


if __name__ == "__main__":
    main()
