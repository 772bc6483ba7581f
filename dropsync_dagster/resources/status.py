"""The status store resource: CouchDB over HTTP when DROPSYNC_COUCHDB_URL is set, else SQLite."""

from __future__ import annotations

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.status import MAX_FAILURES, StatusStore
from dropsync_dagster.core.status_couchdb import DEFAULT_DB, CouchDBStatusStore
from dropsync_dagster.core.status_sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.env_backed import EnvBackedResource

DEFAULT_LEASE_SECONDS = 900.0


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
        """The configured store (credentials stay inside it, never in messages)."""
        env = self.env()
        url = env.get("DROPSYNC_COUCHDB_URL")
        if url:
            return CouchDBStatusStore(
                url, env.get("DROPSYNC_COUCHDB_DB") or DEFAULT_DB,
                env.get("DROPSYNC_COUCHDB_USER") or None, env.get("DROPSYNC_COUCHDB_PASSWORD") or None,
            )
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        return SqliteStatusStore(settings.state_dir / DEFAULT_FILENAME)

    def limits(self) -> tuple[int, float]:
        """(failures before `failed`, lease seconds)."""
        env = self.env()
        try:
            failures = int(env.get("DROPSYNC_MAX_FAILURES") or MAX_FAILURES)
            lease = float(env.get("DROPSYNC_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
        except ValueError as exc:
            raise ConfigError(f"DROPSYNC_MAX_FAILURES / DROPSYNC_LEASE_SECONDS: {exc}") from exc
        return failures, lease
