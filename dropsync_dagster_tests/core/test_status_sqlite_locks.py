"""Opening a second SQLite status store in a process keeps the first one's locks."""

import sqlite3
import subprocess
import sys

import pytest

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status.sqlite import SqliteStatusStore


def test_a_second_store_in_the_process_keeps_the_first_stores_locks(tmp_path) -> None:
    """A closed descriptor of the database file would drop this process's POSIX locks (the
    in-process executor's steps and heartbeat threads then saw `disk I/O error`)."""
    path = tmp_path / "status.sqlite3"
    first = SqliteStatusStore(path)
    reader = first._conn()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM drops").fetchall()  # a read transaction: holds its lock
    SqliteStatusStore(path)  # e.g. the next step's StatusResource.store()
    # Another process must not get the exclusive lock a journal-mode change needs while we read.
    other = subprocess.run(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0.2, "
         "isolation_level=None); c.execute('PRAGMA journal_mode=DELETE')", str(path)],
        capture_output=True, text=True,
    )
    reader.execute("COMMIT")
    assert other.returncode != 0 and "database is locked" in other.stderr
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_status_store_that_is_a_symlink_is_refused(tmp_path) -> None:
    """The database is never opened through a symlink."""
    real = tmp_path / "real.sqlite3"
    SqliteStatusStore(real)
    link = tmp_path / "status.sqlite3"
    link.symlink_to(real)
    with pytest.raises(RefusedError, match="symlink"):
        SqliteStatusStore(link)
