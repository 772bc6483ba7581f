"""Per-file lineage documents: where each file's bytes were hashed, copied, archived and moved.

Lineage is written ahead of the moves it describes: before the first original moves, every
original the move gate lets go has a complete document whose `move` is `intended` (with its
processed path), and the same intents are saved in the state folder. After the moves the
documents say `moved` (or why a file was held). A run that dies in between leaves intents that
the next run's move step confirms from the disk (`confirm_intents`).
"""

from __future__ import annotations

import os
from collections.abc import Container, Mapping

from pydantic import BaseModel

from dropsync_dagster.core.plan.gates import move_gate
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import (
    ArchiveStepResult,
    ChecksumsResult,
    CopiesResult,
    FileMove,
    OriginalsResult,
)
from dropsync_dagster.core.status.files import ArchiveRef, FileDoc, FileDocuments, file_id

INTENDED = "intended"
MOVES = "moves"  # the move step's write-ahead record in the drop's state folder (`moves.json`)


class MoveIntent(BaseModel):
    """An original about to move: from `source` to `processed`."""

    source: str
    processed: str


class MoveIntents(BaseModel):
    """The moves a step is about to make, saved before the first one (state folder `moves.json`)."""

    drop: str
    plan_id: str  # the plan whose moves these are (a later plan's run confirms them all the same)
    moves: dict[str, MoveIntent] = {}


def intended_moves(plan: Plan, checksums: ChecksumsResult, copies: CopiesResult, *,
                   recorded: Container[str] | None, archived: Container[str] | None) -> MoveIntents:
    """Every original the move gate lets go, with its processed destination."""
    moves = {}
    for entry in plan.entries:
        if entry.matched and entry.processed and move_gate(
                entry, checksums.files.get(entry.relpath), copies.files.get(entry.relpath),
                recorded=recorded, archived=archived) is None:
            moves[entry.relpath] = MoveIntent(source=entry.source, processed=entry.processed)
    return MoveIntents(drop=plan.drop, plan_id=plan.plan_id, moves=moves)


def as_outcomes(intents: MoveIntents) -> OriginalsResult:
    """The intents in the shape lineage_docs reads: every intended original `intended`."""
    return OriginalsResult(drop=intents.drop, plan_id=intents.plan_id, files={
        rel: FileMove(outcome=INTENDED, processed=m.processed) for rel, m in intents.moves.items()})


def confirm_intents(store: FileDocuments, intents: MoveIntents) -> int:
    """Mark `moved` the intended originals that did move (destination there, source gone)."""
    done = [FileDoc(relpath=rel, processed=m.processed, move="moved")  # type: ignore[call-arg]
            for rel, m in intents.moves.items()
            if os.path.lexists(m.processed) and not os.path.lexists(m.source)]
    return store.put_files(intents.drop, done) if done else 0


def lineage_docs(
    plan: Plan,
    checksums: ChecksumsResult,
    copies: CopiesResult,
    archive: ArchiveStepResult,
    originals: OriginalsResult,
    row_ids: Mapping[str, str | int] | None = None,
) -> list[FileDoc]:
    """One document per matched file, from the results of one run."""
    generations = _member_generations(archive, checksums)
    docs = []
    for entry in plan.entries:
        if not entry.matched:
            continue
        rel = entry.relpath
        sums: dict[str, dict[str, str]] = {}
        checksum = checksums.files.get(rel)
        if checksum is not None and checksum.digests is not None:
            sums["source"] = {"blake3": checksum.digests.blake3, **({"md5": checksum.digests.md5} if checksum.digests.md5 else {})}
        copy = copies.files.get(rel)
        if copy is not None and copy.verified_blake3:
            sums["repository"] = {"blake3": copy.verified_blake3}
        if rel in archive.archived:
            sums["archive"] = {"blake3": archive.archived[rel]}
        move = originals.files.get(rel)
        fields = {
            "source": entry.source,
            "size": entry.size,
            "checksums": sums,
            "target": copy.target if copy is not None and copy.verified_blake3 else None,
            "archive": generations.get(rel),
            "labkey_row_id": (row_ids or {}).get(rel),
            "processed": move.processed if move is not None and move.outcome in ("moved", INTENDED) else None,
            "move": move.outcome if move is not None else None,
            "held_reason": str(move.reason) if move is not None and move.reason else None,
        }
        # Unset fields keep what earlier runs recorded (put_files merges only fields that are set).
        kept = {k: v for k, v in fields.items() if v is not None}
        if move is not None and move.outcome not in ("moved", INTENDED):
            kept["processed"] = None  # still in the drop: a write-ahead intent is withdrawn
        docs.append(FileDoc(_id=file_id(plan.drop, rel), relpath=rel, drop=plan.drop, **kept))
    return docs


def _member_generations(archive: ArchiveStepResult, checksums: ChecksumsResult) -> dict[str, ArchiveRef]:
    """Which published generation holds each file whose archived bytes match its checksum —
    whichever run wrote it (a re-run after an interrupted one archives nothing new)."""
    refs = {}
    for rel, where in archive.locations.items():
        checksum = checksums.files.get(rel)
        if checksum is not None and checksum.digests is not None and archive.archived.get(rel) == checksum.digests.blake3:
            refs[rel] = ArchiveRef(path=where.path, generation=where.generation)
    return refs
