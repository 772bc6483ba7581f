"""Benchmark: what one Dagster run of the drop job costs around a 1-file drop, end to end on the
production deployment (deploy/dagster.yaml over Postgres, `dagster-daemon run`, sensor every 1 s).

Phases, from the run's event log and the moment the drop was marked ready:
ready → enqueued (the sensor), enqueued → started (queue + launching the run worker process),
started → success (the steps). Beside it: `dropsync sync --do-it` on the same kind of drop.

    .venv/bin/python -m benchmarks.run_overhead [--drops 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from benchmarks.datasets import DEFAULT_BENCH_DIR, remove_tree  # noqa: E402
from benchmarks.deployment import begin, cli_sync, deployment, finished_runs, load_average, tiny_drops  # noqa: E402
from dropsync_dagster_tests.fixtures.dagster_procs import wait_until  # noqa: E402

PHASES = ("ready → enqueued", "enqueued → started", "started → success", "ready → success")


def event_times(instance: dg.DagsterInstance, run_id: str) -> dict[dg.DagsterEventType, float]:
    """The first timestamp of each run-level event type."""
    times: dict[dg.DagsterEventType, float] = {}
    for record in instance.all_logs(run_id):
        if record.dagster_event_type is not None:
            times.setdefault(record.dagster_event_type, record.timestamp)
    return times


def through_daemon(work: Path, count: int) -> dict[str, list[float]]:
    """Per phase, the seconds each of `count` drops took, one drop at a time."""
    drops = tiny_drops(work / "daemon", count)
    for drop in drops:
        (drop.path / ".ready").unlink()  # not ready yet: each becomes ready in turn below
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    with deployment(work / "daemon", drops[0].env(), 4) as (procs, home):
        daemon = procs.daemon(home)
        instance = procs.enter(home.instance())
        time.sleep(10)  # the daemon is up and its sensor has had its first tick (nothing ready yet)
        for drop in drops:
            ready = time.time()
            drop.mark_ready()
            tags = {"dagster/partition": drop.key}
            run = wait_until(lambda: finished_runs(instance, tags), 120, f"the run of {drop.key}", daemon, every=0.2)[0]
            if run.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                errors = [r.message for r in instance.all_logs(run.dagster_run.run_id)
                          if r.dagster_event is not None and r.dagster_event.is_failure]
                raise SystemExit(f"{drop.key}: run {run.dagster_run.run_id} failed: {errors}")
            t = event_times(instance, run.dagster_run.run_id)
            enqueued, started = t[dg.DagsterEventType.RUN_ENQUEUED], t[dg.DagsterEventType.RUN_START]
            success = t[dg.DagsterEventType.RUN_SUCCESS]
            for phase, seconds in zip(PHASES, (enqueued - ready, started - enqueued, success - started, success - ready)):
                phases[phase].append(seconds)
    return phases


def through_cli(work: Path, count: int) -> list[float]:
    """Wall seconds of `dropsync sync --do-it --yes` per 1-file drop."""
    drops = tiny_drops(work / "cli", count)
    with deployment(work / "cli", drops[0].env(), 4) as (_, home):
        out = []
        for drop in drops:
            start = time.perf_counter()
            cli_sync(home, drop)
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    """Time both ways and print a markdown table of medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "run_overhead")
    args = parser.parse_args()
    work = begin("run overhead", f"{args.drops} one-file drops each way", args.dir)
    try:
        phases = through_daemon(work, args.drops)
        cli = through_cli(work, args.drops)
    finally:
        remove_tree(work)
    print("| phase | median s | min s | max s |\n|---|---|---|---|")
    for phase, values in phases.items():
        print(f"| daemon: {phase} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    print(f"| `dropsync sync --do-it` (whole process) | {statistics.median(cli):.2f} | {min(cli):.2f} | {max(cli):.2f} |")
    print(f"\n<!-- load average at the end {load_average()} -->")


if __name__ == "__main__":
    main()
