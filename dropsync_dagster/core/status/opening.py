"""Which status store a deployment uses: CouchDB when DROPSYNC_COUCHDB_URL is set, else SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.results import private_state_dir
from dropsync_dagster.core.status.store import MAX_FAILURES, StatusStore
from dropsync_dagster.core.status.couchdb import DEFAULT_DB, CouchDBStatusStore
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore

DEFAULT_LEASE_SECONDS = 900.0


def open_store(env: Mapping[str, str], state_dir: Path) -> StatusStore:
    """The deployment's store (credentials stay inside it, never in messages)."""
    url = env.get("DROPSYNC_COUCHDB_URL")
    if url:
        return CouchDBStatusStore(
            url, env.get("DROPSYNC_COUCHDB_DB") or DEFAULT_DB,
            env.get("DROPSYNC_COUCHDB_USER") or None, env.get("DROPSYNC_COUCHDB_PASSWORD") or None,
        )
    private_state_dir(state_dir)
    return SqliteStatusStore(state_dir / DEFAULT_FILENAME)


def status_limits(env: Mapping[str, str]) -> tuple[int, float]:
    """(failed runs before a drop is `failed`, lease seconds)."""
    try:
        failures = int(env.get("DROPSYNC_MAX_FAILURES") or MAX_FAILURES)
        lease = float(env.get("DROPSYNC_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
    except ValueError as exc:
        raise ConfigError(f"DROPSYNC_MAX_FAILURES / DROPSYNC_LEASE_SECONDS: {exc}") from exc
    return failures, lease
