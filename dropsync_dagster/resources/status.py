"""The status store resource: an abstract store with SQLite and CouchDB implementations.

`resources/deployment.py` picks one from the environment; tests pick one by class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.status.couchdb import DEFAULT_DB, CouchDBStatusStore
from dropsync_dagster.core.status.opening import DEFAULT_LEASE_SECONDS, sqlite_store
from dropsync_dagster.core.status.store import MAX_FAILURES, StatusStore
from dropsync_dagster.deployment import StatusLimits


class StatusResource(dg.ConfigurableResource, ABC):
    """Drop and file status documents shared by every deployment that syncs the same drops."""

    max_failures: int = Field(default=MAX_FAILURES, description="DROPSYNC_MAX_FAILURES: failed runs before a drop is failed")
    lease_seconds: float = Field(default=DEFAULT_LEASE_SECONDS, description="DROPSYNC_LEASE_SECONDS: a claim's lease")

    @abstractmethod
    def store(self, settings: Settings) -> StatusStore:
        """The configured store."""

    def limits(self) -> StatusLimits:
        """Failures before `failed` and the lease of a claim."""
        return StatusLimits(self.max_failures, self.lease_seconds)


class SqliteStatusResource(StatusResource):
    """The embedded store: SQLite in the deployment's state folder (one host)."""

    def store(self, settings: Settings) -> StatusStore:
        """The state folder's SQLite store."""
        return sqlite_store(settings.state_dir)


class CouchStatusResource(StatusResource):
    """A CouchDB database over HTTP, shared by every host (credentials never leave the store)."""

    url: str = Field(description="DROPSYNC_COUCHDB_URL")
    db: str = Field(default=DEFAULT_DB, description="DROPSYNC_COUCHDB_DB")
    user: str | None = Field(default=None, description="DROPSYNC_COUCHDB_USER")
    password: str | None = Field(default=None, description="DROPSYNC_COUCHDB_PASSWORD (bound as an EnvVar)")

    def store(self, settings: Settings) -> StatusStore:
        """The CouchDB store."""
        return CouchDBStatusStore(self.url, self.db, self.user, self.password)
