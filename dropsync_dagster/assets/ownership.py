"""The drop's claim in the status store, as every step of a run sees it.

The first dropsync step a run executes claims the drop (after checking readiness); every later
step proves the claim is still the run's and holds it with a heartbeat (`ClaimGuard`) while it
works. A run that materialises `drop_manifest` alone is a dry run: it takes no lease, and a
read-only check keeps it from replacing the plan of a run that holds the drop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
from pydantic import BaseModel

from dropsync_dagster.core.status.claim import ClaimGuard
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ResultStore
from dropsync_dagster.core.status.runs import check_not_held, claim_drop, require_ready
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster.runs import IGNORE_READINESS, run_finished

T = TypeVar("T", bound=BaseModel)

# The dropsync steps in the order a run executes them.
STEPS = ("drop_manifest", "drop_checksums", "encrypted_archive", "repository_copies", "labkey_records",
         "archived_originals")


def run_owner(context: dg.AssetExecutionContext) -> str:
    """The root run id: re-executions and retries of one run keep its claim."""
    return context.run.root_run_id or context.run.run_id


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


@dataclass(frozen=True)
class Held:
    """What a step works with while it holds the drop: the store, its guard, its run's plan."""

    store: StatusStore
    guard: ClaimGuard
    plan: Plan
    results: ResultStore
    owner: str

    def load(self, name: str, model: type[T]) -> T:
        """A step result of this run's plan (another plan's is refused)."""
        return self.results.load(self.plan.drop, name, model, self.plan.plan_id)

    def load_optional(self, name: str, model: type[T]) -> T | None:
        """Like load, but None when the step has not run for this plan."""
        return self.results.load_optional(self.plan.drop, name, model, self.plan.plan_id)

    def save(self, name: str, result: BaseModel) -> Path:
        """Save a result of this plan, if the run still holds the drop (a lost run writes nothing)."""
        self.guard.check()
        return self.results.save(self.plan.drop, name, result, self.plan.plan_id)


@contextmanager
def held(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource) -> Iterator[Held]:
    """Every step after the plan: claim (the run's first step) or prove the claim, hold it with a
    heartbeat while the step works, and hand over the plan the claim names."""
    store, results = status.store(storage.settings()), storage.results()
    drop, owner, lease = context.partition_key, run_owner(context), status.limits().lease_seconds
    if _starts_run(context):
        doc = store.get(drop)
        same = doc is not None and doc.owner == owner and doc.plan_id is not None
        plan = results.load_plan(drop, doc.plan_id if same else None)
        override = ready_or_override(context, storage, drop, plan.drop_path)
        claim_drop(store, drop, plan.drop_path, owner, lease, plan_id=plan.plan_id,
                   readiness_override=override, holder_finished=_finished(context))
    with ClaimGuard(store, drop, owner, lease) as guard:
        assert guard.doc is not None  # set on entering
        yield Held(store, guard, results.load_plan(drop, guard.doc.plan_id), results, owner)
