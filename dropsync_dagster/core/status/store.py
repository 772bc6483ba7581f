"""The status store: drop documents and the lifecycle rules every store shares.

A drop document moves `pending` → `processing` → `synced`, and to `failed` after `max_failures`
failed attempts. Every status write is a compare-and-set on `_rev`: the rules below are applied
to the freshest document and retried on conflict, so each write changes only the fields it owns
and never loses another writer's update. Stores implement a few storage primitives; the rules and
the retry loop live here, once. File documents (lineage per file) are in `status_files`.

Claim rules (decided here, documented for people):
- `pending` and `synced` are claimable (re-running a synced drop is idempotent by design);
- `processing` is claimable by the same owner (the Dagster root run id: re-executions and
  retries keep ownership) or by anyone once the lease has expired (takeover from any host);
- `failed` needs `reset` first; an unknown status (hand-edited) is reported, never guessed.
Lease times are wall-clock UTC: hosts sharing a store must keep their clocks in sync (NTP).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from dropsync_dagster.core.errors import DropsyncError, RefusedError
# DropDoc, DropState and utcnow are imported from here by the rest of the package.
from dropsync_dagster.core.status.document import KNOWN_STATES, DropDoc, DropState, parse_drop, utcnow
from dropsync_dagster.core.status.files import MAX_WRITE_ATTEMPTS, FileDocuments

MAX_FAILURES = 3
LAST_ERROR_CHARS = 4000
def _state(doc: DropDoc) -> DropState:
    """The document's state, or a clear error naming the drop and the bad value."""
    if doc.problem is not None:
        raise DropsyncError(f"drop {doc.id}: status document is invalid ({doc.problem}); fix it by hand")
    if doc.status not in KNOWN_STATES:
        raise DropsyncError(
            f"drop {doc.id}: status document has unknown status {doc.status!r} "
            f"(expected one of {', '.join(sorted(KNOWN_STATES))}); run `dropsync reset {doc.id}`"
        )
    return DropState(doc.status)


class NotOwnerError(RefusedError):
    """The run does not hold the drop (any more): it must stop; an outage is not this."""


def _check_owner(doc: DropDoc, owner: str) -> None:
    """Refuse unless `owner` holds the drop (status `processing` with that owner)."""
    if _state(doc) is not DropState.PROCESSING or doc.owner != owner:
        raise NotOwnerError(
            f"drop {doc.id}: run {owner} does not own it (status {doc.status}, owner {doc.owner})"
        )


def _refuse_live_holder(doc: DropDoc, now: datetime) -> None:
    """Refuse when a live lease is held; the message names the owner and the expiry."""
    if doc.lease_live(now):
        assert doc.lease_expires_at is not None  # lease_live checked it
        raise RefusedError(
            f"drop {doc.id} is claimed by run {doc.owner} (worker {doc.worker_id}) "
            f"until {doc.lease_expires_at.isoformat()}"
        )


Changes = dict[str, Any]
Decision = Callable[[DropDoc, datetime], Changes | None]


class StatusStore(FileDocuments, abc.ABC):
    """Drop and file status documents; subclasses supply storage, this class the rules."""

    # --- storage primitives (each store implements these) -------------------------------

    @abc.abstractmethod
    def _read_drop(self, drop: str) -> dict[str, Any] | None:
        """The stored drop document with `_id` and `_rev`, or None."""

    @abc.abstractmethod
    def _write_drop(self, body: dict[str, Any], expected_rev: str | None) -> str | None:
        """Store `body` if the stored rev is `expected_rev` (None: absent); new rev, or None if lost."""

    @abc.abstractmethod
    def _create_drops(self, bodies: list[dict[str, Any]]) -> int:
        """Create the documents that do not exist yet; return how many were created."""

    @abc.abstractmethod
    def _iter_drops(self, status: str | None) -> Iterable[dict[str, Any]]:
        """All stored drop documents, or those with `status`."""

    @abc.abstractmethod
    def _count_by_status(self) -> dict[str, int]:
        """Number of drop documents per stored status value."""

    # --- drops ---------------------------------------------------------------------------

    def get(self, drop: str) -> DropDoc | None:
        """The drop's status document, or None when it was never registered."""
        raw = self._read_drop(drop)
        return None if raw is None else parse_drop(raw)

    def list(self, status: str | None = None) -> list[DropDoc]:
        """Every drop document (or those with `status`); invalid ones are flagged, not raised."""
        return [parse_drop(raw) for raw in self._iter_drops(status)]

    def count_by_status(self) -> dict[str, int]:
        """How many drops are in each stored status (unknown values included)."""
        return self._count_by_status()

    def register(self, drop: str, path: str) -> DropDoc:
        """Register a drop as `pending`; an existing document is returned untouched."""
        body = _new_drop(drop, path, utcnow()).body()
        rev = self._write_drop(body, None)
        return self._require(drop) if rev is None else parse_drop({**body, "_rev": rev})

    def register_many(self, drops: Mapping[str, str]) -> int:
        """Register drop → path in bulk; existing documents are left as is. Returns the new count."""
        now = utcnow()
        return self._create_drops([_new_drop(d, p, now).body() for d, p in drops.items()])

    def set_path(self, drop: str, path: str) -> DropDoc:
        """Record where the drop's folder is: the partition key -> folder mapping every run reads."""

        def decide(doc: DropDoc, now: datetime) -> Changes | None:
            return None if doc.path == path else {"path": path}

        return self._update(drop, decide)

    def mark_changed(self, drop: str) -> DropDoc:
        """Send a synced drop whose candidate files changed back to `pending` (else a no-op)."""

        def decide(doc: DropDoc, now: datetime) -> Changes | None:
            if _state(doc) is not DropState.SYNCED:
                return None
            return {"status": DropState.PENDING.value, "lease_expires_at": None}

        return self._update(drop, decide)

    def claim(self, drop: str, owner: str, worker_id: str, lease_seconds: float,
              plan_id: str | None = None, readiness_override: str | None = None,
              holder_finished: Callable[[str], bool] | None = None) -> DropDoc:
        """Take the drop for run `owner` (see the module's claim rules) or raise RefusedError.
        `plan_id` names the plan the run works from; the same owner's claim keeps its plan otherwise.
        `holder_finished(run)`: True when another holder's run is known to be over (its live lease
        was left behind by a failure path that could not reach the store), so it may be taken."""

        def decide(doc: DropDoc, now: datetime) -> Changes:
            if _state(doc) is DropState.FAILED:
                last = (doc.last_error or "").strip().splitlines()[-1:] or ["none recorded"]
                raise RefusedError(
                    f"drop {drop} failed {doc.failure_count} times (last error: {last[0][:200]}); "
                    f"run `dropsync reset {drop}` first"
                )
            if doc.owner != owner and not (
                doc.owner is not None and holder_finished is not None and holder_finished(doc.owner)
            ):
                _refuse_live_holder(doc, now)
            lease = now + timedelta(seconds=lease_seconds)
            same = doc.owner == owner and doc.status == DropState.PROCESSING
            return {
                "status": DropState.PROCESSING.value,
                "owner": owner,
                "worker_id": worker_id,
                "claimed_at": now,
                "lease_expires_at": lease,
                "plan_id": plan_id if plan_id is not None or not same else doc.plan_id,
                "readiness_override": readiness_override,
            }

        return self._update(drop, decide)

    def assert_owner(self, drop: str, owner: str) -> DropDoc:
        """Raise RefusedError unless run `owner` holds the drop; every step calls this."""
        doc = self._require(drop)
        _check_owner(doc, owner)
        return doc

    def extend_lease(self, drop: str, owner: str, seconds: float) -> DropDoc:
        """Push the owner's lease to now + `seconds`; a non-owner is refused."""
        return self._owned_write(
            drop, owner, lambda now: {"lease_expires_at": now + timedelta(seconds=seconds)}
        )

    def mark_synced(self, drop: str, owner: str, counts: Mapping[str, int]) -> DropDoc:
        """The owner finished the drop: `synced`, with its counts; the lease ends."""
        done = {
            "status": DropState.SYNCED.value,
            "counts": dict(counts),
            "lease_expires_at": None,
            "failure_count": 0,
            "last_error": None,
        }
        return self._owned_write(drop, owner, lambda now: done)

    def record_failure(
        self, drop: str, owner: str | None, error: str, max_failures: int = MAX_FAILURES
    ) -> DropDoc:
        """Count one failed attempt (the only place that does): back to `pending`, or `failed`.

        With `owner`, only that owner may record; with None, a live holder's drop is refused.
        """

        def decide(doc: DropDoc, now: datetime) -> Changes:
            _state(doc)
            if owner is not None:
                _check_owner(doc, owner)
            else:
                _refuse_live_holder(doc, now)
            count = doc.failure_count + 1
            status = DropState.FAILED if count >= max_failures else DropState.PENDING
            return {
                "status": status.value,
                "failure_count": count,
                "lease_expires_at": None,
                "last_error": error[:LAST_ERROR_CHARS],
            }

        return self._update(drop, decide)

    def reset(self, drop: str) -> DropDoc:
        """Make a drop claimable afresh: `pending`, failure_count 0; a live holder is refused.

        Also repairs a hand-edited unknown status; an invalid document must be fixed by hand.
        """

        def decide(doc: DropDoc, now: datetime) -> Changes:
            if doc.problem is not None:
                _state(doc)  # raises, naming the problem
            _refuse_live_holder(doc, now)
            return {
                "status": DropState.PENDING.value,
                "failure_count": 0,
                "last_error": None,
                "lease_expires_at": None,
            }

        return self._update(drop, decide)

    def release(self, drop: str, owner: str) -> DropDoc:
        """Make `owner`'s claim claimable at once (`pending`, lease ended), without counting a
        failure; for a holder whose run is known to be finished. Another owner is refused."""

        def decide(doc: DropDoc, now: datetime) -> Changes:
            _check_owner(doc, owner)
            return {"status": DropState.PENDING.value, "lease_expires_at": None}

        return self._update(drop, decide)

    def _require(self, drop: str) -> DropDoc:
        doc = self.get(drop)
        if doc is None:
            raise DropsyncError(f"drop {drop}: no status document; register it first")
        return doc

    def _owned_write(self, drop: str, owner: str, changes: Callable[[datetime], Changes]) -> DropDoc:
        def decide(doc: DropDoc, now: datetime) -> Changes:
            _check_owner(doc, owner)
            return changes(now)

        return self._update(drop, decide)

    def _update(self, drop: str, decide: Decision) -> DropDoc:
        """Apply `decide`'s changes to the freshest document until the compare-and-set wins.

        On a lost race the document is re-read and `decide` runs again, so a write changes only
        the fields it owns and another writer's fields survive.
        """
        for _ in range(MAX_WRITE_ATTEMPTS):
            current = self._require(drop)
            now = utcnow()
            changes = decide(current, now)
            if changes is None:
                return current
            body = current.model_copy(update={**changes, "updated_at": now}).body()
            rev = self._write_drop(body, current.rev)
            if rev is not None:
                return parse_drop({**body, "_rev": rev})
        raise RefusedError(f"drop {drop}: status write lost {MAX_WRITE_ATTEMPTS} races in a row")


def _new_drop(drop: str, path: str, now: datetime) -> DropDoc:
    return DropDoc(id=drop, path=path, created_at=now, updated_at=now)
