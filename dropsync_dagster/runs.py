"""Dagster runs of drops: the tags we give them and when a run, with its retries, is finished."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from dropsync_dagster.core.model import Plan

LAUNCHED_BY = "dropsync/launched_by"
IGNORE_READINESS = "dropsync/ignore_readiness"  # run tag: "true" syncs a drop that is not ready
SHOWN_PLAN = "dropsync/shown_plan"  # run tag: the id of the plan `dropsync sync` showed, handed over in-process

_handed: dict[str, Plan] = {}  # plans shown by `dropsync sync` in this process, for the run it starts


def hand_over(plan: Plan) -> dict[str, str]:
    """Keep `plan` for the in-process run about to start (the plan the user saw is the one that
    runs, and the drop is not planned twice); the run tag that names it."""
    _handed[plan.plan_id] = plan
    return {SHOWN_PLAN: plan.plan_id}


def take_over(tags: Mapping[str, str], drop: str, path: str) -> Plan | None:
    """The plan handed over for a run with these tags, once, in the process that showed it and
    only for the same drop and folder; None otherwise (the run plans for itself)."""
    plan_id = tags.get(SHOWN_PLAN)
    plan = _handed.pop(plan_id, None) if plan_id else None
    return plan if plan is not None and plan.drop == drop and plan.drop_path == path else None


def run_finished(inst: dg.DagsterInstance, run_id: str) -> bool:
    """True when run `run_id` and every retry or re-execution of it (same root run) are finished;
    a run this instance does not know is not known to be finished."""
    run = inst.get_run_by_id(run_id)
    if run is None or not run.is_finished:
        return False
    family = inst.get_runs(filters=dg.RunsFilter(tags={"dagster/root_run_id": run_id}))
    return all(r.is_finished for r in family)
