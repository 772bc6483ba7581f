"""A drop run's bookkeeping in the status store: the claim at its start and the failure path."""

from __future__ import annotations

import os
import socket

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status import DropDoc, DropState, StatusStore, utcnow, worker_id


def claim_drop(store: StatusStore, drop: str, path: str, owner: str, lease_seconds: float) -> None:
    """Register (idempotently) and claim the drop for run `owner`, or raise RefusedError."""
    store.register(drop, path)
    store.claim(drop, owner, worker_id(), lease_seconds)


def record_run_failure(store: StatusStore, drop: str, path: str, owner: str, error: str, max_failures: int) -> str:
    """The failure path (the one caller of record_failure): count the attempt unless another,
    live run holds the drop (then this run was refused, not failed). Returns what was done."""
    doc = store.get(drop) or store.register(drop, path)
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
