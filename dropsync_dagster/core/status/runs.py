"""A drop run's bookkeeping in the status store: the claim at its start and the failure path."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from dropsync_dagster.core.drops.completion import missing_completion_files
from dropsync_dagster.core.drops.discovery import Readiness, readiness
from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.status.document import DropDoc, DropState, utcnow, worker_id

IGNORE_READINESS_HINT = "`dropsync sync --ignore-readiness` or the run tag dropsync/ignore_readiness=true"


def claim_drop(store: StatusStore, drop: str, path: str, owner: str, lease_seconds: float, *,
               plan_id: str | None = None, readiness_override: str | None = None,
               holder_finished: Callable[[str], bool] | None = None) -> DropDoc:
    """Register (idempotently) and claim the drop for run `owner`, or raise RefusedError."""
    store.register(drop, path)
    return store.claim(drop, owner, worker_id(), lease_seconds, plan_id=plan_id,
                       readiness_override=readiness_override, holder_finished=holder_finished)


def claimed_plan_id(store: StatusStore, drop: str, owner: str) -> str | None:
    """The plan run `owner` claimed the drop with (kept by its retries and re-executions); None
    when another run, or none, claimed it last: the run's first step then claims the current plan."""
    doc = store.get(drop)
    return doc.plan_id if doc is not None and doc.owner == owner else None


def check_not_held(store: StatusStore, drop: str, owner: str,
                   holder_finished: Callable[[str], bool] | None = None) -> None:
    """A read-only claim check (a dry run): RefusedError when another run holds a live lease."""
    doc = store.get(drop)
    if doc is None or doc.owner == owner or not doc.lease_live(utcnow()):
        return
    if holder_finished is not None and doc.owner is not None and holder_finished(doc.owner):
        return
    raise RefusedError(f"drop {drop} is claimed by run {doc.owner} (worker {doc.worker_id}); "
                       "its frozen plan is left alone")


def require_ready(drop: str, path: Path, settings: Settings, ignore: bool, by: str) -> str | None:
    """Readiness at the start of a run (sentinel, rsync exit code 0, quiet period, the completion
    files sync.yml names): RefusedError with the reason, unless `ignore`; then the override to
    record (None when the drop is ready)."""
    state = readiness(path, settings.ready_files, settings.quiet_seconds)
    missing = missing_completion_files(path) if state is Readiness.READY else []
    if state is Readiness.READY and not missing:
        return None
    if missing:
        state = Readiness.WAITING
        why = f"completion file {missing[0]} (sync.yml completion_files) is missing in {path}"
    elif state is Readiness.TRANSFER_FAILED:
        why = f"{path / '.metadata_rsync_exitcode'} does not read 0 (the transfer failed)"
    else:
        quiet = f", and files changed in the last {settings.quiet_seconds:g} s" if settings.quiet_seconds else ""
        why = f"no sentinel ({', '.join(settings.ready_files)}) in {path}{quiet}"
    if ignore:
        return f"{state} ignored by {by}: {why}"
    raise RefusedError(f"drop {drop} is not ready: {why}; to sync it anyway use {IGNORE_READINESS_HINT}")


def record_run_failure(store: StatusStore, drop: str, path: str | None, owner: str, error: str, max_failures: int) -> str:
    """The failure path (the one caller of record_failure): count the attempt unless another,
    live run holds the drop (then this run was refused, not failed). Returns what was done.
    `path` registers a drop that has no document yet (None: not known, e.g. the folder is gone)."""
    doc = store.get(drop) or store.register(drop, path or "")
    if doc.status == DropState.PROCESSING and doc.owner != owner and doc.lease_live(utcnow()):
        return f"{drop}: run {owner} was refused (drop held by run {doc.owner}); not counted"
    if doc.status == DropState.FAILED:
        return f"{drop}: run {owner} was refused (drop failed; needs `dropsync reset`); not counted"
    holder = owner if doc.status == DropState.PROCESSING and doc.owner == owner else None
    try:
        after = store.record_failure(drop, holder, error, max_failures)
    except RefusedError as exc:  # a live holder appeared between the read and the write
        return f"{drop}: not counted: {exc}"
    return f"{drop}: failure {after.failure_count}/{max_failures} recorded, now {after.status}"


def holder_died_here(doc: DropDoc) -> bool:
    """True when the drop's live claim was taken by a process on this host that no longer exists."""
    host, _, pid = (doc.worker_id or "").rpartition(":")
    if doc.status != DropState.PROCESSING or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False
