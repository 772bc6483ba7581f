"""The drop's claim in the status store, as every step of a run sees it."""

from __future__ import annotations

import dagster as dg

from dropsync_dagster.core.runs import claim_drop
from dropsync_dagster.core.status import StatusStore
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource


def run_owner(context: dg.AssetExecutionContext) -> str:
    """The root run id: re-executions and retries of one run keep its claim."""
    return context.run.root_run_id or context.run.run_id


def claim(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource, drop: str, path: str) -> StatusStore:
    """The first step that writes: take the drop for this run, or stop (RefusedError) untouched."""
    store = status.store(storage.settings())
    claim_drop(store, drop, path, run_owner(context), status.limits()[1])
    return store


def hold(context: dg.AssetExecutionContext, status: StatusResource, storage: StorageResource, drop: str) -> StatusStore:
    """Every later step, in whatever process: prove the claim is still ours and extend its lease."""
    store = status.store(storage.settings())
    store.extend_lease(drop, run_owner(context), status.limits()[1])
    return store
