"""Holding a drop's claim while a step works: a heartbeat extends the lease, and `check()` proves
ownership right before each irreversible action (publish, LabKey write, move, archive publish).

Why a local deadline is enough between store reads: nobody can take a drop over before its lease
expires, and the lease is only ever pushed forward by its owner. So while the last successful
heartbeat's lease (less a margin for clock skew between hosts) has not run out, the drop is still
ours; `check()` re-reads the document at most every RECHECK_SECONDS on top of that, to notice a
hand edit or a forced reset quickly without one store request per file.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from dropsync_dagster.core.errors import DropsyncError, RefusedError
from dropsync_dagster.core.status.store import DropDoc, NotOwnerError, StatusStore

HEARTBEAT_FRACTION = 3  # the lease is extended every lease/3: two beats may fail before it ends
SAFETY_FRACTION = 0.1  # a lease is treated as ended this much before it does (clock skew)
RECHECK_SECONDS = 1.0


class ClaimGuard:
    """`with ClaimGuard(store, drop, owner, lease) as guard:` extend the lease in the background;
    `guard.check()` raises RefusedError once the claim is lost or the heartbeat kept failing."""

    def __init__(self, store: StatusStore, drop: str, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.drop = drop
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deadline = 0.0  # monotonic time after which the lease may have ended
        self._checked = float("-inf")  # monotonic time of the last confirming store read
        self._lost: str | None = None
        self._beat_error: str | None = None
        self.doc: DropDoc | None = None  # the document as the guard's first extension left it

    def __enter__(self) -> "ClaimGuard":
        started = time.monotonic()
        # Proves ownership now: another holder (RefusedError) or an outage stops the step untouched.
        self.doc = self.store.extend_lease(self.drop, self.owner, self.lease_seconds)
        self._confirmed(started)
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.drop}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __call__(self) -> None:
        """The guard callable core takes (`guard=`): same as `check()`."""
        self.check()

    def check(self) -> None:
        """Raise RefusedError unless this run still holds the drop; call right before acting."""
        now = time.monotonic()
        with self._lock:
            lost, deadline, checked, beat = self._lost, self._deadline, self._checked, self._beat_error
        if lost is not None:
            raise RefusedError(lost)
        if now >= deadline:
            why = f" (last heartbeat error: {beat})" if beat else ""
            self._lose(f"drop {self.drop}: run {self.owner} could not keep its lease alive{why}; it stops here")
            raise RefusedError(self._lost or "")
        if now - checked >= RECHECK_SECONDS:
            try:
                self.store.assert_owner(self.drop, self.owner)
            except NotOwnerError as exc:
                self._lose(f"{exc}; run {self.owner} lost its claim and stops here")
                raise RefusedError(self._lost or "") from exc
            except (DropsyncError, OSError) as exc:  # store unreachable: the lease still holds
                with self._lock:
                    self._beat_error = str(exc)
                return
            with self._lock:
                self._checked = now

    def _beat(self) -> None:
        interval = self.lease_seconds / HEARTBEAT_FRACTION
        while not self._stop.wait(interval):
            if self._lost is not None:
                return
            self._extend()

    def _extend(self) -> None:
        """Push the lease forward; a refusal loses the claim, an outage is retried on the next beat."""
        started = time.monotonic()
        try:
            self.store.extend_lease(self.drop, self.owner, self.lease_seconds)
        except NotOwnerError as exc:
            self._lose(f"{exc}; run {self.owner} lost its claim")
            return
        except (DropsyncError, OSError) as exc:  # store unreachable: the deadline decides
            with self._lock:
                self._beat_error = str(exc)
            return
        self._confirmed(started)

    def _confirmed(self, started: float) -> None:
        """The store extended the lease from a request sent at `started`."""
        with self._lock:
            self._deadline = started + self.lease_seconds * (1 - SAFETY_FRACTION)
            self._checked = started
            self._beat_error = None

    def _lose(self, why: str) -> None:
        with self._lock:
            if self._lost is None:
                self._lost = why
