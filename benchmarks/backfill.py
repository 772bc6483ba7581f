"""Benchmark: a 20-drop backfill through the daemon against the same drops one by one through the
CLI (`dropsync sync --do-it --yes`), both on the production instance (deploy/dagster.yaml over
Postgres). Drops are tiny (one small file), so this measures Dagster's per-drop cost.

Backfill figures: launch → every run finished (what a user waits, including the backfill
daemon's pick-up, which polls every 30 s), and first run start → last run end (execution alone).

    .venv/bin/python -m benchmarks.backfill [--drops 20] [--max-runs 2 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, remove_tree  # noqa: E402
from benchmarks.deployment import begin, cli_sync, deployment, finished_runs, load_average, register, tiny_drops  # noqa: E402
from dropsync_dagster_tests.fixtures.dagster_procs import wait_until  # noqa: E402


def one_by_one(work: Path, count: int) -> float:
    """Wall seconds to sync `count` drops with one `dropsync sync` each."""
    drops = tiny_drops(work / "cli", count)
    with deployment(work / "cli", drops[0].env(), 1) as (_, home):
        start = time.perf_counter()
        for drop in drops:
            cli_sync(home, drop)
        return time.perf_counter() - start


def backfilled(work: Path, count: int, max_runs: int) -> tuple[float, float, float]:
    """(launch → all finished, pick-up delay, first start → last end) for one backfill."""
    drops = tiny_drops(work / f"backfill{max_runs}", count)
    with deployment(work / f"backfill{max_runs}", drops[0].env(), max_runs) as (procs, home):
        register(home, drops[0].root)
        daemon = procs.daemon(home)
        web = procs.webserver(home)
        instance = procs.enter(home.instance())
        time.sleep(5)  # the daemon settles (first sensor tick, first backfill pass)
        launched = time.perf_counter()
        backfill = web.launch_backfill("sync_drop", sorted(d.key for d in drops), "benchmark")
        tags = {"dagster/backfill": backfill}
        wait_until(lambda: instance.get_run_records(dg.RunsFilter(tags=tags), limit=1), 120, "the first run", daemon, web)
        picked = time.perf_counter() - launched
        runs = wait_until(lambda: len(finished_runs(instance, tags)) >= count and finished_runs(instance, tags),
                          1200, "the backfill", daemon, web, every=1)
        total = time.perf_counter() - launched
        failed = [r.dagster_run.run_id for r in runs if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            raise SystemExit(f"backfill runs failed: {failed}")
        span = max(r.end_time for r in runs) - min(r.start_time for r in runs)
        return total, picked, span


def main() -> None:
    """Time both ways and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--max-runs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "backfill")
    args = parser.parse_args()
    work = begin("backfill benchmark", f"{args.drops} one-file drops", args.dir)
    print("| how | wall s | per drop s | notes |\n|---|---|---|---|")
    try:
        cli = one_by_one(work, args.drops)
        print(f"| `dropsync sync --do-it` one by one | {cli:.1f} | {cli / args.drops:.2f} | one process per drop, in-process run |",
              flush=True)
        for max_runs in args.max_runs:
            total, picked, span = backfilled(work, args.drops, max_runs)
            print(f"| backfill, max_concurrent_runs {max_runs} | {total:.1f} | {total / args.drops:.2f} | "
                  f"pick-up {picked:.1f} s; first start → last end {span:.1f} s ({span / args.drops:.2f} s/drop) |",
                  flush=True)
        print(f"\n<!-- load average at the end {load_average()} -->")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
