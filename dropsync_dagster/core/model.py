"""The plan's vocabulary: one entry model per file and one enum of reasons, used end to end."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dropsync_dagster.core.syncyml.schema import SyncConfig


class Reason(StrEnum):
    """Why a file stops at a gate (or, for `already_synced`, why its copy is not needed)."""

    SKIPPED_NON_MATCH = "skipped_non_match"
    METADATA_MISSING = "metadata_missing"
    METADATA_AMBIGUOUS = "metadata_ambiguous"
    MD5_MISMATCH = "md5_mismatch"
    WRITEBACK_SKIPPED = "writeback_skipped"
    ALREADY_SYNCED = "already_synced"
    TARGET_CONFLICT = "target_conflict"
    NOT_VERIFIED = "not_verified"
    EXISTS = "exists"
    UNSAFE_PATH = "unsafe_path"
    DUPLICATE_PRESENCE_KEY = "duplicate_presence_key"
    CHANGED_SINCE_PLAN = "changed_since_plan"  # a source read is not the planned file
    CHANGED_AFTER_COPY = "changed_after_copy"  # the original changed after its copy was verified
    UNREADABLE = "unreadable"  # a file or folder of the drop cannot be read
    BAD_SIDECAR = "bad_sidecar"  # a malformed, oversized, symlinked or special sidecar
    BAD_NAME = "bad_name"  # not UTF-8, too long for its sidecar/target/temporary, or over PATH_MAX


# Reasons that do not stop a file: it continues to LabKey and the move.
CONTINUING_REASONS = frozenset({Reason.ALREADY_SYNCED})


class WriteAction(StrEnum):
    """What write-back will do with a file's LabKey row."""

    UPDATE = "update"
    CREATE = "create"
    SKIP_CREATE = "skip_create"
    NONE = "none"  # the drop has no `labkey` section


class Digests(BaseModel):
    """Content digests of one file, from a single read."""

    model_config = ConfigDict(frozen=True)

    size: int
    blake3: str
    md5: str | None = None


class Identity(BaseModel):
    """Which file a path named when it was read: a different one, or one changed since, differs."""

    model_config = ConfigDict(frozen=True)

    device: int
    inode: int
    size: int
    mtime: float
    ctime: float | None = None  # recorded when hashed; the plan compares without it

    def same_file(self, other: Identity) -> bool:
        """Same device, inode, size and mtime — and ctime, when both know it."""
        if (self.device, self.inode, self.size, self.mtime) != (other.device, other.inode, other.size, other.mtime):
            return False
        return self.ctime is None or other.ctime is None or self.ctime == other.ctime


class PlanEntry(BaseModel):
    """One candidate file of a drop: where it goes and whether it may go there."""

    model_config = ConfigDict(frozen=True)

    relpath: str  # drop-relative, '/'-separated
    source: str  # absolute source path
    size: int
    mtime: float
    device: int | None = None  # identity from planning's lstat: every later read must find it
    inode: int | None = None
    ctime: float | None = None
    matched: bool  # did drop_filename_regex match
    variables: dict[str, str] = {}
    metadata: dict[str, dict[str, Any]] = {}  # source name -> matched row
    target: str | None = None  # absolute repository path, frozen here
    target_relpath: str | None = None
    processed: str | None = None  # absolute destination of the original
    processed_taken: bool = False  # something already sits at `processed` (move: `exists`)
    md5_sidecar: str | None = None  # expected MD5 from <file>.md5, when present
    reason: Reason | None = None  # None: the file goes ahead
    write_action: WriteAction = WriteAction.NONE
    labkey_row: dict[str, Any] | None = None  # existing row found by the presence check
    presence_key: str | None = None

    @property
    def identity(self) -> Identity | None:
        """The planned file's identity (without ctime), or None for a plan that did not record it."""
        if self.device is None or self.inode is None:
            return None
        return Identity(device=self.device, inode=self.inode, size=self.size, mtime=self.mtime)

    @property
    def goes_ahead(self) -> bool:
        """True when no gate has stopped the file (`already_synced` continues)."""
        return self.matched and (self.reason is None or self.reason in CONTINUING_REASONS)


class Plan(BaseModel):
    """The frozen plan of one drop: computed once in `drop_manifest`, read by later assets."""

    model_config = ConfigDict(frozen=True)

    drop: str  # partition key
    # Names this plan: every step result carries it, and no step uses a result of another plan.
    plan_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    drop_path: str
    repository_folder: str
    processed_folder: str
    created_at: str  # ISO timestamp; `<today>` and `now()` derive from it
    today: str
    entries: list[PlanEntry]
    config_sha256: str
    config: SyncConfig  # the sync.yml this plan was made from; later steps never re-read it
    labkey_configured: bool = False

    def counts(self) -> dict[str, int]:
        """Counts of files by reason (`go` for files that go ahead untouched)."""
        out: dict[str, int] = {}
        for e in self.entries:
            key = "go" if e.reason is None else str(e.reason)
            out[key] = out.get(key, 0) + 1
        return out
