"""The `repository_copies` step: verified, durable, no-overwrite publishing of planned files."""

from __future__ import annotations

import time
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.gates import copy_gate
from dropsync_dagster.core.integrity import CopyItem, CopyOutcome, Guard, copy_verified_batch
from dropsync_dagster.core.testhooks import hook
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileCopy
from dropsync_dagster.core.settings import Settings

_DONE = (CopyOutcome.COPIED, CopyOutcome.ALREADY_SYNCED)


def copy_files(plan: Plan, checksums: ChecksumsResult, settings: Settings, guard: Guard | None = None) -> CopiesResult:
    """Copy every file the gates allow; `already_synced` files are confirmed, not rewritten.
    `guard` re-checks the run's claim right before each publish."""
    settings.check_writable(plan.repository_folder, "repository_folder")
    todo = [e for e in plan.entries if e.target and copy_gate(e, checksums.files.get(e.relpath)) is None]
    items = [
        CopyItem(Path(e.source), Path(e.target), checksums.files[e.relpath].digests, checksums.files[e.relpath].sidecar)
        for e in todo
    ]
    started = time.monotonic()
    # Twice the bytes: each file is copied, then read back from the repository to verify it.
    with progress.task(f"copying {plan.drop}", 2 * sum(e.size for e in todo)) as on_bytes:
        outcomes = copy_verified_batch(items, on_bytes=on_bytes, guard=guard)
    files = {
        e.relpath: FileCopy(
            outcome=str(outcome),
            target=e.target,
            verified_blake3=item.expected.blake3 if outcome in _DONE else None,
        )
        for e, item, outcome in zip(todo, items, outcomes)
    }
    hook("copied", drop=plan.drop)
    return CopiesResult(drop=plan.drop, files=files, seconds=time.monotonic() - started, bytes=sum(e.size for e in todo))
