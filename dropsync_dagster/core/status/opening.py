"""The embedded status store (SQLite in the state folder) and the claim lease's default length.

Which store a deployment uses is chosen by `dropsync_dagster.deployment` (CouchDB when it names
one); this module only opens the SQLite store in a private state folder.
"""

from __future__ import annotations

from pathlib import Path

from dropsync_dagster.core.results import private_state_dir
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore

DEFAULT_LEASE_SECONDS = 900.0


def sqlite_store(state_dir: Path) -> SqliteStatusStore:
    """The SQLite store of a state folder (created private, 0700, when missing)."""
    private_state_dir(state_dir)
    return SqliteStatusStore(state_dir / DEFAULT_FILENAME)
