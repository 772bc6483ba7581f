"""The `archived_originals` step: originals leave the drop only when every gate held."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path

from dropsync_dagster.core.discovery import candidate_files, fingerprint
from dropsync_dagster.core.gates import move_gate
from dropsync_dagster.core.integrity import Guard, MoveOutcome
from dropsync_dagster.core.integrity import move_originals as move_originals_batch
from dropsync_dagster.core.model import Plan, Reason
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileMove, OriginalsResult
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.testhooks import hook


def move_originals(
    plan: Plan,
    checksums: ChecksumsResult,
    copies: CopiesResult,
    settings: Settings,
    *,
    recorded: Container[str] | None = None,
    archived: Container[str] | None = None,
    guard: Guard | None = None,
) -> OriginalsResult:
    """Move each original (and its sidecars) to its processed destination, or say why not.
    `guard` re-checks the run's claim right before each move."""
    settings.check_writable(plan.processed_folder, "processed_folder")
    files: dict[str, FileMove] = {}
    moves = []
    for entry in plan.entries:
        if not entry.matched:
            continue
        checksum = checksums.files.get(entry.relpath)
        reason = move_gate(
            entry, checksum, copies.files.get(entry.relpath), recorded=recorded, archived=archived
        )
        if reason is not None:
            files[entry.relpath] = FileMove(outcome="held", reason=reason)
        else:
            moves.append((entry, (Path(entry.source), Path(entry.processed), checksum.digests)))
    for (entry, _), outcome in zip(moves, move_originals_batch([m for _, m in moves], guard=guard)):
        files[entry.relpath] = FileMove(
            outcome=str(outcome),
            reason=Reason.EXISTS if outcome == MoveOutcome.EXISTS else None,
            processed=entry.processed,
        )
    hook("moved", drop=plan.drop)
    after = fingerprint(candidate_files(Path(plan.drop_path), plan.config.drop_filename_filter))
    return OriginalsResult(drop=plan.drop, files=files, fingerprint=after)
