"""The typed results of a drop's assets, each bound to the plan it was made from (`plan_id`);
the IO manager keeps them as JSON in the state folder (core/result_files.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from dropsync_dagster.core.model import Digests, Identity, Reason


class FileChecksum(BaseModel):
    """A source file's digests from one read, and the verdict of its `.md5` sidecar."""

    model_config = ConfigDict(frozen=True)

    digests: Digests | None  # None: held before it was read (see `reason`)
    sidecar: str  # "md5" (kept, verified) or "blake3" (written by us)
    reason: Reason | None = None  # md5_mismatch, not_verified, changed_since_plan, bad_sidecar, ...
    identity: Identity | None = None  # the file that was hashed: only it may move (ctime included)
    expected_md5: str | None = None  # what the `.md5` sidecar said, when there is one


class ChecksumsResult(BaseModel):
    """Output of `drop_checksums`."""

    drop: str
    plan_id: str  # the plan this result was made from: no step uses a result of another plan
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
    plan_id: str  # the plan this result was made from: no step uses a result of another plan
    files: dict[str, FileCopy] = {}
    seconds: float = 0.0
    bytes: int = 0


class FileMove(BaseModel):
    """Where an original is now."""

    outcome: str  # moved | exists | held (still in the drop, with a reason)
    reason: Reason | None = None
    processed: str | None = None
    quarantined: str | None = None  # a held original's place in the quarantine folder (core/stewardship)

    @property
    def label(self) -> str:
        """`moved`, or `<outcome>:<reason>` (e.g. `held:md5_mismatch`, `quarantined:md5_mismatch`)."""
        outcome = "quarantined" if self.quarantined else self.outcome
        return outcome if self.reason is None else f"{outcome}:{self.reason}"


class OriginalsResult(BaseModel):
    """Output of `archived_originals`."""

    drop: str
    plan_id: str  # the plan this result was made from: no step uses a result of another plan
    files: dict[str, FileMove] = {}
    fingerprint: str = ""  # candidate-file fingerprint after the moves (the sensor's baseline)


STATE_DIR_MODE = 0o700  # results, plans and the status database: the service account's alone


def private_state_dir(state_dir: Path) -> None:
    """Make the state folder if missing, and keep it readable by its owner only."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=STATE_DIR_MODE)
    if state_dir.stat().st_mode & 0o777 != STATE_DIR_MODE:
        os.chmod(state_dir, STATE_DIR_MODE)


class ArchiveStepResult(BaseModel):
    """Output of `encrypted_archive`: what this run wrote, and what every generation holds."""

    drop: str
    plan_id: str  # the plan this result was made from: no step uses a result of another plan
    enabled: bool
    why: str
    written: dict[str, Any] | None = None  # core.archive.ArchiveResult of this run, when enabled
    archived: dict[str, str] = {}  # drop-relative path -> BLAKE3, over all validated generations
    locations: dict[str, ArchiveLocation] = {}  # drop-relative path -> the generation holding `archived`
    changed: list[str] = []  # planned files not archived: not the file that was hashed (changed_since_plan)


class ArchiveLocation(BaseModel):
    """The published generation that holds a member's archived bytes (latest wins)."""

    path: str
    generation: int


class FileRecord(BaseModel):
    """What write-back did for one file's LabKey row."""

    action: str  # inserted | updated | unchanged (already as planned) | held
    row_id: str | int | None = None  # the row's key value (`metaData.id` column)
    reason: Reason | None = None  # why a held file has no confirmed row


class LabKeyResult(BaseModel):
    """Output of `labkey_records`: every file's row, for the plan it was written from."""

    drop: str
    plan_id: str  # the plan this result belongs to; the move trusts no other plan's rows
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
