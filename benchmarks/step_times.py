"""Where a run's time went: from the event log of a finished run (the latest one by default),
the wall seconds of each step and the gaps before the first and after the last step.

    DAGSTER_HOME=... .venv/bin/python -m benchmarks.step_times [RUN_ID]
"""

from __future__ import annotations

import sys

import dagster as dg


def step_times(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float]]:
    """(what, seconds) in order: run start → first step, each step, last step → run end."""
    starts: dict[str, float] = {}
    rows: list[tuple[str, float]] = []
    run_start = run_end = first = last = None
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.RUN_START:
            run_start = record.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = record.timestamp
        elif kind == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
            first = first or record.timestamp
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            rows.append((event.step_key, record.timestamp - starts[event.step_key]))
            last = record.timestamp
    if run_start and first:
        rows.insert(0, ("run start → first step", first - run_start))
    if run_end and last:
        rows.append(("last step → run end", run_end - last))
    if run_start and run_end:
        rows.append(("run start → run end", run_end - run_start))
    return rows


def main() -> None:
    instance = dg.DagsterInstance.get()
    if len(sys.argv) > 1:
        run_id = sys.argv[1]
    else:
        runs = instance.get_runs(limit=1)
        if not runs:
            raise SystemExit("no run in this instance")
        run_id = runs[0].run_id
    print(f"run {run_id}")
    for what, seconds in step_times(instance, run_id):
        print(f"  {what:40} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
