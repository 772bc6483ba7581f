"""The `archived_originals` step: originals leave the drop only when every gate held."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path

from dropsync_dagster.core.drops.discovery import candidate_files, fingerprint
from dropsync_dagster.core.plan.gates import move_gate
from dropsync_dagster.core.fs.confined import make_root, root_of
from dropsync_dagster.core.errors import UnsafePathError
from dropsync_dagster.core.integrity.publish import Guard
from dropsync_dagster.core.integrity.moves import MoveItem, MoveOutcome, move_originals as move_originals_batch
from dropsync_dagster.core.model import Plan, PlanEntry, Reason
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileMove, OriginalsResult
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.stewardship.quarantine import quarantine_held
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
    processed = settings.check_writable(plan.processed_folder, "processed_folder")
    drop_root = Path(plan.drop_path)
    files: dict[str, FileMove] = {}
    moves: list[tuple[PlanEntry, MoveItem]] = []
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
            item = MoveItem(
                Path(entry.source), Path(entry.processed), checksum.digests, checksum.identity, drop_root, processed
            )
            moves.append((entry, item))
    for (entry, _), outcome in zip(moves, _move(moves, processed, settings, guard)):
        moved = outcome == MoveOutcome.MOVED
        files[entry.relpath] = FileMove(
            outcome=str(outcome) if outcome in (MoveOutcome.MOVED, MoveOutcome.EXISTS) else "held",
            reason=None if moved else Reason(str(outcome)),
            processed=entry.processed if moved or outcome == MoveOutcome.EXISTS else None,
        )
    # Held for an integrity reason, and the deployment names a quarantine folder: out of the drop.
    files = quarantine_held(plan, checksums, files, settings.quarantine_dir, guard)
    hook("moved", drop=plan.drop)
    after = fingerprint(candidate_files(Path(plan.drop_path), plan.config.drop_filename_filter))
    return OriginalsResult(drop=plan.drop, plan_id=plan.plan_id, files=files, fingerprint=after)


def _move(moves: list[tuple[PlanEntry, MoveItem]], processed: Path, settings: Settings, guard: Guard | None) -> list[MoveOutcome]:
    """Make the processed folder (confined to its allowed root) and move; all held when it cannot be."""
    if not moves:
        return []
    try:
        make_root(root_of(processed, settings.allowed_roots), processed)
    except UnsafePathError:  # the processed folder itself became a link since planning
        return [MoveOutcome.UNSAFE_PATH] * len(moves)
    return move_originals_batch([m for _, m in moves], guard=guard)
