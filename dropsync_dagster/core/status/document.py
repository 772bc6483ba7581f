"""The drop status document: its lifecycle states and its fields, as every store keeps them."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_WRITABLE_SPECIALS = frozenset({"_id", "_attachments"})


class DropState(StrEnum):
    """The lifecycle states of a drop's status document."""

    PENDING = "pending"
    PROCESSING = "processing"
    SYNCED = "synced"
    FAILED = "failed"


KNOWN_STATES = frozenset(s.value for s in DropState)


def worker_id() -> str:
    """`host:pid` of this process, recorded in claims for people to find the worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only clock the rules use)."""
    return datetime.now(UTC)


class DropDoc(BaseModel):
    """One drop's status document; unknown fields (hand-added, other tools') are kept."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    id: str = Field(alias="_id")
    rev: str | None = Field(default=None, alias="_rev")
    type: Literal["drop"] = "drop"
    path: str = ""
    status: str = DropState.PENDING.value  # str, not the enum: a hand edit must stay readable
    owner: str | None = None  # Dagster root run id of the current or last holder
    worker_id: str | None = None  # host:pid, for people
    failure_count: int = 0
    claimed_at: datetime | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    counts: dict[str, int] = {}
    last_error: str | None = None
    plan_id: str | None = None  # the frozen plan the owner works from (its later steps load it)
    readiness_override: str | None = None  # who synced the drop without its readiness, and how
    problem: str | None = Field(default=None, exclude=True)  # why the stored document is invalid

    @property
    def unknown(self) -> bool:
        """True when the stored status is not one of ours or the document is invalid."""
        return self.problem is not None or self.status not in KNOWN_STATES

    def lease_live(self, now: datetime) -> bool:
        """True while a `processing` holder's lease has not expired."""
        return (
            self.status == DropState.PROCESSING
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )

    def body(self) -> dict[str, Any]:
        """The JSON document to store (without `_rev`, which the store manages)."""
        body = self.model_dump(mode="json", by_alias=True, exclude={"rev"})
        # Read-only members a server may have added (`_conflicts`, `_revisions`...) cannot be written.
        return {k: v for k, v in body.items() if not k.startswith("_") or k in _WRITABLE_SPECIALS}


def parse_drop(raw: Mapping[str, Any]) -> DropDoc:
    """A stored document as a DropDoc; an invalid one is flagged with `problem`, never raised."""
    try:
        return DropDoc.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return DropDoc.model_construct(
            id=str(raw.get("_id")),
            rev=raw.get("_rev"),
            path=str(raw.get("path", "")),
            status=str(raw.get("status")),
            problem=f"field {field!r}: {err['msg']}",
        )
