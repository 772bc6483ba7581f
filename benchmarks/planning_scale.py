"""Benchmark: the `drop_manifest` asset on a 100,000-file drop, materialised through Dagster.

benchmarks/plan.py times the planner itself (make_plan, `dropsync plan`); this one times what
the UI gets: the asset's materialisation in a fresh process (wall s, CPU s, peak RSS), the size of
its metadata (tables of the first rows, counts, the JSON path), and the frozen plan's JSON,
written once per materialisation. The drop is the one benchmarks/plan.py builds (reused).

    .venv/bin/python -m benchmarks.planning_scale [--files 100000] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, filesystem_of, machine, remove_tree  # noqa: E402
from benchmarks.plan import GiB, _env, build  # noqa: E402

# A fresh interpreter: materialise drop_manifest for the drop; report time, RSS and metadata.
_MEASURE = """
import json, resource, sys, time
import dagster as dg
from dropsync_dagster.assets.drop_manifest import drop_manifest
from dropsync_dagster.core.drops.discovery import drop_key
from dropsync_dagster.definitions import defs
def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
key = drop_key("seq", sys.argv[1])
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions("drops", [key])
    before, cpu0, start = hwm(), cpu(), time.perf_counter()
    result = dg.materialize([drop_manifest], partition_key=key, instance=instance, raise_on_error=False,
                            resources=defs.resources)
    seconds, cpu1 = time.perf_counter() - start, cpu()
    assert result.success, "drop_manifest failed"
    meta = result.asset_materializations_for_node("drop_manifest")[0].metadata
    sizes = {k: len(v.value) for k, v in meta.items() if isinstance(v.value, str)}
    print(json.dumps({"seconds": seconds, "cpu": cpu1 - cpu0, "peak_rss": hwm(), "rss_before": before,
                      "files": meta["files"].value, "metadata_bytes": sizes,
                      "table_rows": meta["plan"].value.count("\\n| ") ,
                      "plan_json_bytes": __import__("os").path.getsize(meta["plan_json"].value)}))
"""


def measure(drop_path: Path, env: dict[str, str]) -> dict:
    """One materialisation in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, drop_path.name], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"drop_manifest failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build (or reuse) the drop, materialise drop_manifest `--repeat` times, print a table row."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "plan")
    parser.add_argument("--keep", action="store_true", help="keep the data for another run")
    args = parser.parse_args()
    drop = build(args.dir, args.files)
    env = _env(drop)
    env.pop("DAGSTER_HOME", None)  # the child uses a throwaway instance
    print(f"# drop_manifest benchmark, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
          f"{filesystem_of(args.dir)}; load average {os.getloadavg()[0]:.1f}")
    try:
        runs = [measure(drop.path, env) for _ in range(args.repeat)]
    finally:
        if not args.keep:
            remove_tree(args.dir)
    secs = [r["seconds"] for r in runs]
    rss = max(r["peak_rss"] for r in runs)
    last = runs[-1]
    print("| what | min s | median s | max s | CPU s | peak RSS |\n|---|---|---|---|---|---|")
    print(f"| drop_manifest materialisation, {last['files']} files | {min(secs):.2f} | {statistics.median(secs):.2f} | "
          f"{max(secs):.2f} | {statistics.median(r['cpu'] for r in runs):.2f} | {rss / 2**20:.0f} MiB |")
    print(f"<!-- metadata bytes per entry: {last['metadata_bytes']}; plan table rows shown: {last['table_rows']}; "
          f"interpreter before: {last['rss_before'] / 2**20:.0f} MiB -->")
    print(f"<!-- plan JSON {last['plan_json_bytes'] / 2**20:.1f} MiB, written once per materialisation -->")
    verdict = "OK" if max(secs) <= 10 and rss <= GiB else "OVER TARGET"
    print(f"<!-- worst {max(secs):.2f} s, peak {rss / 2**20:.0f} MiB: {verdict} (targets 10 s, 1 GiB) -->")


if __name__ == "__main__":
    main()
