"""What the drop sensor decides on each tick: which drops to register and which to run.

A run is requested for a newly ready drop, and for a known drop whose candidate files differ
both from the baseline its last sync left behind and from what was last requested. Sidecars
are never candidates and moved originals are part of the baseline, so our own writes never
trigger a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dropsync_dagster.core.config import CONFIG_NAME, load_config
from dropsync_dagster.core.discovery import DropFolder, Readiness, candidate_files, fingerprint, list_drops, readiness
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.results import OriginalsResult, ResultStore
from dropsync_dagster.core.settings import Settings

CURSOR_VERSION = 1


@dataclass
class TickPlan:
    """The outcome of one tick: partitions to add, runs to request, problems to report."""

    cursor: dict
    register: list[DropFolder] = field(default_factory=list)
    run: list[DropFolder] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def tick(settings: Settings, cursor: dict | None, *, max_new: int = 200, rescan_budget_s: float = 10.0) -> TickPlan:
    """Decide one tick. The first tick (no cursor) registers ready drops without running them."""
    first = not cursor
    state = dict(cursor or {"v": CURSOR_VERSION, "drops": {}, "next": 0})
    known: dict[str, dict] = dict(state.get("drops", {}))
    failed_before: dict[str, str] = state.get("transfer_failed", {})
    failed: dict[str, str] = {}
    plan = TickPlan(cursor=state)
    found = {d.key: d for d in list_drops(settings.drop_roots)}
    for key in [k for k in known if k not in found]:
        del known[key]  # the folder is gone; forget it rather than fail
    for key, drop in found.items():
        if key in known or len(plan.register) >= max_new:
            continue
        ready = readiness(drop.path, settings.ready_files, settings.quiet_seconds)
        if ready is Readiness.TRANSFER_FAILED:
            failed[key] = f"{key}: transfer failed ({drop.path}/.metadata_rsync_exitcode is not 0)"
            if key not in failed_before:  # report once, not on every tick
                plan.problems.append(failed[key])
            continue
        if ready is Readiness.READY:
            fp = _fingerprint(drop, plan.problems)
            if fp is None:
                continue
            known[key] = {"fp": fp}
            plan.register.append(drop)
            if not first:
                plan.run.append(drop)
    if not first:
        _rescan(settings, found, known, plan, rescan_budget_s, state)
    state["drops"] = known
    state["transfer_failed"] = failed
    return plan


def _rescan(settings: Settings, found: dict[str, DropFolder], known: dict[str, dict], plan: TickPlan, budget_s: float, state: dict) -> None:
    """Round-robin over known drops within a time budget, looking for changed candidates."""
    keys = sorted(k for k in known if k in found and found[k] not in plan.register)
    if not keys:
        return
    results = ResultStore(settings.state_dir)
    deadline = time.monotonic() + budget_s
    start = state.get("next", 0) % len(keys)
    checked = 0
    for i in range(len(keys)):
        if time.monotonic() > deadline:
            break
        key = keys[(start + i) % len(keys)]
        checked += 1
        fp = _fingerprint(found[key], plan.problems)
        if fp is None or fp == known[key]["fp"]:
            continue
        synced = results.load_optional(key, "originals", OriginalsResult)
        if synced is not None and synced.fingerprint == fp:
            continue
        known[key] = {"fp": fp}
        plan.run.append(found[key])
    state["next"] = (start + checked) % len(keys)


def _fingerprint(drop: DropFolder, problems: list[str]) -> str | None:
    """The drop's candidate fingerprint, or None (with a problem) when its sync.yml is broken."""
    try:
        config = load_config(drop.path / CONFIG_NAME)
        return fingerprint(candidate_files(drop.path, config.drop_filename_filter))
    except (DropsyncError, OSError) as exc:
        problems.append(f"{drop.key}: {exc}")
        return None
