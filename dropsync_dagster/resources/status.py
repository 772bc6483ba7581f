"""The status store resource: CouchDB over HTTP when DROPSYNC_COUCHDB_URL is set, else SQLite."""

from __future__ import annotations

from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.status.opening import open_store, status_limits
from dropsync_dagster.resources.env_backed import EnvBackedResource


class StatusResource(EnvBackedResource):
    """Drop and file status documents shared by every deployment that syncs the same drops."""

    ENV = {
        "couchdb_url": "DROPSYNC_COUCHDB_URL",
        "couchdb_db": "DROPSYNC_COUCHDB_DB",
        "couchdb_user": "DROPSYNC_COUCHDB_USER",
        "couchdb_password": "DROPSYNC_COUCHDB_PASSWORD",
        "max_failures": "DROPSYNC_MAX_FAILURES",
        "lease_seconds": "DROPSYNC_LEASE_SECONDS",
    }

    couchdb_url: str | None = None
    couchdb_db: str | None = None
    couchdb_user: str | None = None
    couchdb_password: str | None = None
    max_failures: str | None = None
    lease_seconds: str | None = None

    def store(self, settings: Settings) -> StatusStore:
        """The configured store."""
        return open_store(self.env(), settings.state_dir)

    def limits(self) -> tuple[int, float]:
        """(failures before `failed`, lease seconds)."""
        return status_limits(self.env())
