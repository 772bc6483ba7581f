"""Which files of a drop are held back, and why, as far as a run's results go: the table every
step shows, from the plan's gates to the move of the originals."""

from __future__ import annotations

from typing import NamedTuple

from dropsync_dagster.core.plan.gates import COPY_DONE, copy_gate
from dropsync_dagster.core.model import CONTINUING_REASONS, Plan, PlanEntry, Reason
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileChecksum, LabKeyResult, OriginalsResult


CONTINUING = CONTINUING_REASONS | {Reason.SKIPPED_NON_MATCH}


class HeldFile(NamedTuple):
    """A matched file that did not go on, with the digests that tell why where digests do."""

    file: str  # drop-relative
    reason: str
    expected: str = ""
    actual: str = ""
    quarantined: str = ""  # where the original sits in quarantine ("": still in the drop)


def held_files(
    plan: Plan,
    checksums: ChecksumsResult | None = None,
    copies: CopiesResult | None = None,
    labkey: LabKeyResult | None = None,
    originals: OriginalsResult | None = None,
) -> list[HeldFile]:
    """Matched files held back by the plan and by each result given, first reason first."""
    held = []
    for entry in plan.entries:
        if not entry.matched:
            continue
        checksum = checksums.files.get(entry.relpath) if checksums is not None else None
        reason = _reason(entry, checksum, checksums, copies, labkey, originals)
        if reason is not None and reason not in CONTINUING:
            move = originals.files.get(entry.relpath) if originals is not None else None
            where = move.quarantined or "" if move is not None else ""
            held.append(HeldFile(entry.relpath, str(reason), *_digests(entry, checksum, str(reason)), where))
    return held


def _reason(
    entry: PlanEntry,
    checksum: FileChecksum | None,
    checksums: ChecksumsResult | None,
    copies: CopiesResult | None,
    labkey: LabKeyResult | None,
    originals: OriginalsResult | None,
) -> str | None:
    """The first step's reason to stop `entry`, among the results given."""
    if checksums is None:
        return "exists" if entry.goes_ahead and entry.processed_taken else entry.reason
    reason = copy_gate(entry, checksum)
    if reason is not None:
        return reason
    copy = copies.files.get(entry.relpath) if copies is not None else None
    if copy is not None and copy.outcome not in COPY_DONE:
        return copy.outcome
    record = labkey.files.get(entry.relpath) if labkey is not None else None
    if record is not None and record.action == "held":
        return record.reason or Reason.NOT_VERIFIED
    move = originals.files.get(entry.relpath) if originals is not None else None
    if move is not None and move.outcome != "moved":
        return move.reason or move.outcome
    return None


def _digests(entry: PlanEntry, checksum: FileChecksum | None, reason: str) -> tuple[str, str]:
    """(expected, actual) for reasons a digest explains: the `.md5` sidecar against the bytes read."""
    if checksum is None or checksum.digests is None:
        return "", ""  # held before it was read: no digest explains it
    if reason == Reason.MD5_MISMATCH:
        return f"md5 {_short(checksum.expected_md5)}", f"md5 {_short(checksum.digests.md5)}"
    if reason == Reason.TARGET_CONFLICT:
        return f"blake3 {_short(checksum.digests.blake3)}", "a different file at the target"
    return "", ""


def _short(digest: str | None) -> str:
    """The first 8 hex digits: enough to tell two digests apart, narrow enough for a table
    (the full ones are in the step's JSON result and the file's lineage document)."""
    return f"{digest[:8]}…" if digest else "?"
