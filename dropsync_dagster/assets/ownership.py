"""The drop's claim in the status store, as every step of a run sees it.

The first dropsync step a run executes claims the drop (after checking readiness); every later
step proves the claim is still the run's and holds it with a heartbeat (`ClaimGuard`) while it
works. A run that materialises `drop_manifest` alone is a dry run: it takes no lease, and a
read-only check keeps it from replacing the plan of a run that holds the drop. The plan a step
works from is its `drop_manifest` input: the plan the run's claim names (resources/drop_results.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import BaseModel

from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.result_files import ResultFiles
from dropsync_dagster.core.status.claim import ClaimGuard
from dropsync_dagster.core.stewardship.quarantine_return import Returned, finish_cut_moves, return_due
from dropsync_dagster.core.status.runs import check_not_held, claim_drop, require_ready
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.resources.drop_results import root_run_id
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster.runs import IGNORE_READINESS, run_finished

# The dropsync steps in the order a run executes them.
STEPS = ("drop_manifest", "drop_checksums", "encrypted_archive", "repository_copies", "labkey_records",
         "archived_originals")


def run_owner(context: dg.AssetExecutionContext) -> str:
    """The root run id: re-executions and retries of one run keep its claim."""
    return root_run_id(context.run)


def _executed(context: dg.AssetExecutionContext) -> list[str]:
    """The dropsync steps this run executes, in order."""
    run = context.run
    selected = None if run.asset_selection is None else {k.to_user_string() for k in run.asset_selection}
    keys = None if run.step_keys_to_execute is None else set(run.step_keys_to_execute)
    return [s for s in STEPS if (selected is None or s in selected) and (keys is None or s in keys)]


def dry_run(context: dg.AssetExecutionContext) -> bool:
    """True when the run materialises the plan and nothing else."""
    return _executed(context) == ["drop_manifest"]


def _starts_run(context: dg.AssetExecutionContext) -> bool:
    executed = _executed(context)
    return not executed or executed[0] == context.asset_key.to_user_string()


def _finished(context: dg.AssetExecutionContext):
    return lambda run_id: run_finished(context.instance, run_id)


def ready_or_override(context: dg.AssetExecutionContext, storage: StorageResource, drop: str, path: str) -> str | None:
    """Refuse (one line) unless the drop is ready or the run's tag overrides it; the override."""
    ignore = context.run.tags.get(IGNORE_READINESS, "").lower() == "true"
    return require_ready(drop, Path(path), storage.settings(), ignore, f"run {context.run.run_id}")


def claim_plan(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource,
               plan: Plan, override: str | None) -> None:
    """`drop_manifest`, before its plan is saved: claim the drop with this plan (a real run), or
    check read-only that no other run holds it (a dry run)."""
    store = status.store(storage.settings())
    if dry_run(context):
        check_not_held(store, plan.drop, run_owner(context), _finished(context))
    else:
        claim_drop(store, plan.drop, plan.drop_path, run_owner(context), status.limits().lease_seconds,
                   plan_id=plan.plan_id, readiness_override=override, holder_finished=_finished(context))


def return_quarantined(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource,
                       folder: DropFolder) -> tuple[list[Returned], list[str]]:
    """`drop_manifest` of a real run, once it claimed the drop: moves into quarantine that a kill
    cut short are finished, and quarantined originals that are due come back into the drop
    (core/stewardship/quarantine_return.py), the claim re-checked before each. (returned, finished)"""
    settings = storage.settings()
    if settings.quarantine_dir is None:
        return [], []
    with ClaimGuard(status.store(settings), folder.key, run_owner(context), status.limits().lease_seconds) as guard:
        finished = finish_cut_moves(settings.quarantine_dir, folder.key, folder.path, guard=guard.check)
        return return_due(settings.quarantine_dir, folder.key, folder.path, guard=guard.check), finished


@dataclass(frozen=True)
class Held:
    """What a step works with while it holds the drop: the store, its guard, its run's plan, and
    the drop's result files for the step's own write-ahead records (not for other steps' results:
    those arrive as the step's inputs)."""

    store: StatusStore
    guard: ClaimGuard
    plan: Plan
    results: ResultFiles
    owner: str

    def record(self, name: str, result: BaseModel) -> Path:
        """Write a record of the step's progress now (before it acts), if the run still holds the drop."""
        self.guard.check()
        return self.results.save(name, result)


@contextmanager
def held(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource, plan: Plan) -> Iterator[Held]:
    """Every step after the plan: claim with the run's plan (the run's first step) or prove the
    claim, hold it with a heartbeat while the step works; a run that lost the drop returns nothing."""
    settings = storage.settings()
    store, owner, lease = status.store(settings), run_owner(context), status.limits().lease_seconds
    if _starts_run(context):
        override = ready_or_override(context, storage, plan.drop, plan.drop_path)
        claim_drop(store, plan.drop, plan.drop_path, owner, lease, plan_id=plan.plan_id,
                   readiness_override=override, holder_finished=_finished(context))
    with ClaimGuard(store, plan.drop, owner, lease) as guard:
        assert guard.doc is not None  # set on entering
        if guard.doc.plan_id != plan.plan_id:
            raise RefusedError(f"drop {plan.drop}: run {owner} holds it for plan {guard.doc.plan_id}, not for plan "
                               f"{plan.plan_id}; materialise the drop again")
        yield Held(store, guard, plan, ResultFiles(settings.state_dir, plan.drop), owner)
        guard.check()  # the IO manager writes the step's result only while the run holds the drop
