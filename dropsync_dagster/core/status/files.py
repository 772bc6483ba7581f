"""File documents: one per file of a drop (`_id` = `<drop>:<relative path>`), its lineage.

Source, size, checksums (algorithm and where they were computed), target, place in the
archive, LabKey row id and processed path. Every asset adds what it learnt: an upsert merges
only the fields it sets, so checksums computed at the source and in the repository add up.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dropsync_dagster.core.errors import DropsyncError, RefusedError

# Losing this many compare-and-set races in a row means a runaway writer, not bad luck.
MAX_WRITE_ATTEMPTS = 50
FILE_BATCH = 1000
Where = Literal["source", "repository", "archive"]


def file_id(drop: str, relpath: str) -> str:
    """The `_id` of a file document: `<drop>:<relative path>`."""
    return f"{drop}:{relpath}"


class ArchiveRef(BaseModel):
    """Where a file's bytes sit: the encrypted archive's path and generation."""

    path: str
    generation: int


class Fixity(BaseModel):
    """The last fixity audit of one copy of a file: when, and whether it still matched."""

    outcome: str  # match, differs, missing, unreadable, damaged
    at: datetime
    detail: str | None = None


class FileDoc(BaseModel):
    """One file's lineage; `put_files` merges only the fields that were set."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    relpath: str
    id: str = Field(default="", alias="_id")
    rev: str | None = Field(default=None, alias="_rev")
    type: Literal["file"] = "file"
    drop: str = ""
    source: str | None = None
    size: int | None = None
    checksums: dict[Where, dict[str, str]] = {}  # where computed -> algorithm -> hex digest
    target: str | None = None
    archive: ArchiveRef | None = None
    labkey_row_id: str | int | None = None
    processed: str | None = None
    verified_at: datetime | None = None  # when a fixity audit last re-read the repository copy
    fixity: dict[Where, Fixity] = {}  # the last audit of each copy: repository, archive
    created_at: datetime | None = None
    updated_at: datetime | None = None


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`patch` over `base`, merging nested objects (checksums from different places add up)."""
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        out[key] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


class FileDocuments(abc.ABC):
    """File-document operations over three storage primitives that each store implements."""

    @abc.abstractmethod
    def _read_files(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored file documents (with `_rev`) by id; missing ids are absent from the result."""

    @abc.abstractmethod
    def _write_files(self, writes: list[tuple[dict[str, Any], str | None]]) -> set[str]:
        """Compare-and-set each (body, expected rev; None: absent); return the ids that lost."""

    @abc.abstractmethod
    def _find_files(self, path: str) -> list[dict[str, Any]]:
        """File documents whose source, target or processed path is `path`."""

    @abc.abstractmethod
    def _drop_files(self, drop: str) -> list[dict[str, Any]]:
        """Every file document of `drop`."""

    def put_files(self, drop: str, docs: Iterable[FileDoc]) -> int:
        """Upsert file documents of `drop`, merging the fields each one sets. Returns the count."""
        patches: dict[str, dict[str, Any]] = {}
        for doc in docs:
            patch = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for managed in ("_id", "_rev", "type", "drop", "created_at", "updated_at"):
                patch.pop(managed, None)
            key = file_id(drop, doc.relpath)
            patches[key] = merge(patches.get(key, {}), patch)
        ids = [*patches]
        for start in range(0, len(ids), FILE_BATCH):
            self._put_batch(drop, {i: patches[i] for i in ids[start : start + FILE_BATCH]})
        return len(ids)

    def _put_batch(self, drop: str, patches: dict[str, dict[str, Any]]) -> None:
        """Read, merge, compare-and-set; the ids that lost a race go round again."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            now = datetime.now(UTC).isoformat()
            stored = self._read_files([*patches])
            writes = []
            for fid, patch in patches.items():
                old = stored.get(fid, {"_id": fid, "type": "file", "drop": drop, "created_at": now})
                body = merge({k: v for k, v in old.items() if k != "_rev"}, patch)
                writes.append(({**body, "updated_at": now}, old.get("_rev")))
            lost = self._write_files(writes)
            if not lost:
                return
            patches = {fid: patches[fid] for fid in lost}
        raise RefusedError(f"drop {drop}: file documents lost {MAX_WRITE_ATTEMPTS} races in a row")

    def get_file(self, fid: str) -> FileDoc | None:
        """The file document with `_id` `fid`, or None."""
        raw = self._read_files([fid]).get(fid)
        return None if raw is None else FileDoc.model_validate(raw)

    def drop_files(self, drop: str) -> list[FileDoc]:
        """Every file document of `drop`, by relative path."""
        return sorted((FileDoc.model_validate(raw) for raw in self._drop_files(drop)), key=lambda d: d.relpath)

    def find_file(self, path: str) -> FileDoc | None:
        """The file document whose source, target or processed path is `path`, or None.

        Two documents claiming one path is a conflict worth a person's look: DropsyncError.
        """
        found = {raw["_id"]: raw for raw in self._find_files(path)}
        if len(found) > 1:
            raise DropsyncError(
                f"path {path} is recorded by several file documents: {', '.join(sorted(found))}"
            )
        return next((FileDoc.model_validate(raw) for raw in found.values()), None)
