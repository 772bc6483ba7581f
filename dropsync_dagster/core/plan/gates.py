"""The one rule that decides whether a file may go on: to the repository, and out of the drop."""

from __future__ import annotations

from collections.abc import Container

from dropsync_dagster.core.model import PlanEntry, Reason
from dropsync_dagster.core.results import FileChecksum, FileCopy

COPY_DONE = frozenset({"copied", "already_synced"})


def copy_gate(entry: PlanEntry, checksum: FileChecksum | None) -> Reason | None:
    """Why `entry` may not be copied, or None when it may."""
    if not entry.goes_ahead:
        return entry.reason
    if checksum is None:
        return Reason.NOT_VERIFIED
    return checksum.reason


def move_gate(
    entry: PlanEntry,
    checksum: FileChecksum | None,
    copy: FileCopy | None,
    *,
    recorded: Container[str] | None = None,
    archived: Container[str] | None = None,
) -> Reason | None:
    """Why the original may not leave the drop yet, or None when it may.

    An original moves only when its copy is verified, and — where the drop requires them —
    its LabKey row is confirmed written (`recorded`) and it sits in a validated archive
    (`archived`). Pass None for a gate the drop does not have.
    """
    reason = copy_gate(entry, checksum)
    if reason is not None:
        return reason
    if copy is None or copy.target != entry.target:
        # No copy, or one made for another plan's target (a step materialised on its own).
        return Reason.NOT_VERIFIED
    if copy.outcome not in COPY_DONE:
        return Reason(copy.outcome)
    if recorded is not None and entry.relpath not in recorded:
        return Reason.WRITEBACK_SKIPPED if entry.write_action == "skip_create" else Reason.NOT_VERIFIED
    if archived is not None and entry.relpath not in archived:
        return Reason.NOT_VERIFIED
    return None
