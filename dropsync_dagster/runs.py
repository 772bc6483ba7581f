"""Dagster runs of drops: the tags we give them and when a run, with its retries, is finished."""

from __future__ import annotations

import dagster as dg

LAUNCHED_BY = "dropsync/launched_by"
IGNORE_READINESS = "dropsync/ignore_readiness"  # run tag: "true" syncs a drop that is not ready


def run_finished(inst: dg.DagsterInstance, run_id: str) -> bool:
    """True when run `run_id` and every retry or re-execution of it (same root run) are finished;
    a run this instance does not know is not known to be finished."""
    run = inst.get_run_by_id(run_id)
    if run is None or not run.is_finished:
        return False
    family = inst.get_runs(filters=dg.RunsFilter(tags={"dagster/root_run_id": run_id}))
    return all(r.is_finished for r in family)
