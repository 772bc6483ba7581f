"""Small JSON documents passed between assets, one per drop and step, in the state folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.model import Digests, Plan, Reason

T = TypeVar("T", bound=BaseModel)


class FileChecksum(BaseModel):
    """A source file's digests from one read, and the verdict of its `.md5` sidecar."""

    model_config = ConfigDict(frozen=True)

    digests: Digests
    sidecar: str  # "md5" (kept, verified) or "blake3" (written by us)
    reason: Reason | None = None  # md5_mismatch or not_verified (changed since planning)
    expected_md5: str | None = None  # what the `.md5` sidecar said, when there is one


class ChecksumsResult(BaseModel):
    """Output of `drop_checksums`."""

    drop: str
    files: dict[str, FileChecksum] = {}
    seconds: float = 0.0
    bytes: int = 0


class FileCopy(BaseModel):
    """How a file reached (or did not reach) its target."""

    outcome: str  # copied | already_synced | target_conflict | not_verified
    target: str
    verified_blake3: str | None = None  # digest of the repository bytes, read back after fsync


class CopiesResult(BaseModel):
    """Output of `repository_copies`."""

    drop: str
    files: dict[str, FileCopy] = {}
    seconds: float = 0.0
    bytes: int = 0


class FileMove(BaseModel):
    """Where an original is now."""

    outcome: str  # moved | exists | held (still in the drop, with a reason)
    reason: Reason | None = None
    processed: str | None = None

    @property
    def label(self) -> str:
        """`moved`, or `<outcome>:<reason>` (e.g. `held:md5_mismatch`), as summaries show it."""
        return self.outcome if self.reason is None else f"{self.outcome}:{self.reason}"


class OriginalsResult(BaseModel):
    """Output of `archived_originals`."""

    drop: str
    files: dict[str, FileMove] = {}
    fingerprint: str = ""  # candidate-file fingerprint after the moves (the sensor's baseline)


class ResultStore:
    """Reads and writes a drop's step results under `<state_dir>/drops/<drop>/`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def path(self, drop: str, name: str) -> Path:
        """The JSON document of step `name` for `drop`."""
        return self.state_dir / "drops" / drop / f"{name}.json"

    def save(self, drop: str, name: str, result: BaseModel) -> Path:
        """Write atomically (temp + rename) so a reader never sees half a document."""
        path = self.path(drop, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(result.model_dump_json(indent=1))
        os.replace(tmp, path)
        return path

    def load(self, drop: str, name: str, model: type[T]) -> T:
        """Read a step's result; missing means the step has not run for this drop."""
        path = self.path(drop, name)
        try:
            return model.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise DropsyncError(f"{drop}: no {name} result at {path}; materialise that step first") from exc

    def load_optional(self, drop: str, name: str, model: type[T]) -> T | None:
        """Like load, but None when the step has not run."""
        path = self.path(drop, name)
        return model.model_validate_json(path.read_bytes()) if path.exists() else None

    def load_plan(self, drop: str) -> Plan:
        """The frozen plan written by `drop_manifest`."""
        return self.load(drop, "manifest", Plan)

    def save_json(self, drop: str, name: str, data: dict) -> Path:
        """Write a plain JSON document (e.g. the sensor's baseline)."""
        path = self.path(drop, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        return path


class ArchiveStepResult(BaseModel):
    """Output of `encrypted_archive`: what this run wrote, and what every generation holds."""

    drop: str
    enabled: bool
    why: str
    written: dict[str, Any] | None = None  # core.archive.ArchiveResult of this run, when enabled
    archived: dict[str, str] = {}  # drop-relative path -> BLAKE3, over all validated generations


class FileRecord(BaseModel):
    """What write-back did for one file's LabKey row."""

    action: str  # inserted | updated | unchanged (already as planned) | held
    row_id: str | int | None = None  # the row's key value (`metaData.id` column)
    reason: Reason | None = None  # why a held file has no confirmed row


class LabKeyResult(BaseModel):
    """Output of `labkey_records`: every file's row, for the plan it was written from."""

    drop: str
    plan_created_at: str  # the plan this result belongs to; the move trusts no other plan's rows
    configured: bool
    why: str = ""
    table: str = ""
    key_column: str | None = None
    files: dict[str, FileRecord] = {}
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    complete: bool = False  # False while batches are still being written (or after a failure)
    seconds: float = 0.0

    def recorded(self) -> set[str]:
        """Files whose row is confirmed written."""
        return {rel for rel, f in self.files.items() if f.row_id is not None and f.action != "held"}

    def row_ids(self) -> dict[str, str | int]:
        """Row key per recorded file, for lineage."""
        return {rel: f.row_id for rel, f in self.files.items() if f.row_id is not None and f.action != "held"}
