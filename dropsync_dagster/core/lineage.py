"""Per-file lineage documents: where each file's bytes were hashed, copied, archived and moved."""

from __future__ import annotations

from collections.abc import Mapping

from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ArchiveStepResult, ChecksumsResult, CopiesResult, OriginalsResult
from dropsync_dagster.core.status_files import ArchiveRef, FileDoc, file_id


def lineage_docs(
    plan: Plan,
    checksums: ChecksumsResult,
    copies: CopiesResult,
    archive: ArchiveStepResult,
    originals: OriginalsResult,
    row_ids: Mapping[str, str | int] | None = None,
) -> list[FileDoc]:
    """One document per matched file, from the results of one run."""
    generations = _member_generations(archive)
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
            "processed": move.processed if move is not None and move.outcome == "moved" else None,
            "held_reason": str(move.reason) if move is not None and move.reason else None,
        }
        # Unset fields keep what earlier runs recorded (put_files merges only fields that are set).
        docs.append(FileDoc(_id=file_id(plan.drop, rel), relpath=rel, drop=plan.drop,
                            **{k: v for k, v in fields.items() if v is not None}))
    return docs


def _member_generations(archive: ArchiveStepResult) -> dict[str, ArchiveRef]:
    """Which archive file holds each member written by this run."""
    written = archive.written or {}
    if not written.get("archive_path"):
        return {}
    ref = ArchiveRef(path=written["archive_path"], generation=written["generation"])
    return {rel: ref for rel in written.get("members", [])}
