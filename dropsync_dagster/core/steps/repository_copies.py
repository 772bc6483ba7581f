"""The `repository_copies` step: verified, durable, no-overwrite publishing of planned files."""

from __future__ import annotations

import time
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.fs.confined import make_root, root_of
from dropsync_dagster.core.errors import UnsafePathError
from dropsync_dagster.core.plan.gates import copy_gate
from dropsync_dagster.core.integrity.publish import CopyItem, CopyOutcome, Guard, copy_verified_batch
from dropsync_dagster.core.model import Plan, PlanEntry
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileChecksum, FileCopy
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.testhooks import hook

_DONE = (CopyOutcome.COPIED, CopyOutcome.ALREADY_SYNCED)


def copy_files(plan: Plan, checksums: ChecksumsResult, settings: Settings, guard: Guard | None = None) -> CopiesResult:
    """Copy every file the gates allow; `already_synced` files are confirmed, not rewritten.
    Every target is written under the repository folder, confined there when it is written.
    `guard` re-checks the run's claim right before each publish."""
    repository = settings.check_writable(plan.repository_folder, "repository_folder")
    todo = [e for e in plan.entries if e.target and copy_gate(e, checksums.files.get(e.relpath)) is None]
    items = [_item(e, checksums.files[e.relpath], repository) for e in todo]
    started = time.monotonic()
    # Twice the bytes: each file is copied, then read back from the repository to verify it.
    with progress.task(f"copying {plan.drop}", 2 * sum(e.size for e in todo)) as on_bytes:
        try:
            if items:
                make_root(root_of(repository, settings.allowed_roots), repository)
        except UnsafePathError:  # the repository folder itself became a link since planning
            outcomes = [CopyOutcome.UNSAFE_PATH] * len(items)
        else:
            outcomes = copy_verified_batch(items, on_bytes=on_bytes, guard=guard, file_mode=settings.file_mode)
    files = {
        e.relpath: FileCopy(
            outcome=str(outcome),
            target=e.target,
            verified_blake3=item.expected.blake3 if outcome in _DONE else None,
        )
        for e, item, outcome in zip(todo, items, outcomes)
    }
    hook("copied", drop=plan.drop)
    return CopiesResult(drop=plan.drop, plan_id=plan.plan_id, files=files, seconds=time.monotonic() - started, bytes=sum(e.size for e in todo))


def _item(entry: PlanEntry, checksum: FileChecksum, repository: Path) -> CopyItem:
    """The copy of one planned file: read only if it is still the planned file (device, inode,
    size, mtime — its ctime is the move's business)."""
    assert checksum.digests is not None, "the copy gate passes hashed files only"
    identity = checksum.identity.model_copy(update={"ctime": None}) if checksum.identity else entry.identity
    return CopyItem(
        Path(entry.source), Path(entry.target), checksum.digests, checksum.sidecar,  # type: ignore[arg-type]
        root=repository, identity=identity,
    )
