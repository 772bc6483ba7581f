"""The default status store: one SQLite file in the state folder, safe across processes.

WAL lets readers run beside the one writer; `busy_timeout` makes a writer wait rather than fail;
every write runs in `BEGIN IMMEDIATE`, so the compare-and-set on `_rev` (an `UPDATE … WHERE
rev = ?`) is atomic across processes. Documents are stored as JSON; the columns that are queried
(status, file paths) are generated from that JSON and indexed, so a hand edit of the JSON is
seen by every query. Revs emulate CouchDB's `N-hex`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status.store import StatusStore

DEFAULT_FILENAME = "status.sqlite3"
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drops (
    id TEXT PRIMARY KEY,
    rev TEXT NOT NULL,
    doc TEXT NOT NULL,
    status TEXT GENERATED ALWAYS AS (json_extract(doc, '$.status')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS drops_status ON drops(status);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    rev TEXT NOT NULL,
    doc TEXT NOT NULL,
    drop_id TEXT GENERATED ALWAYS AS (json_extract(doc, '$.drop')) VIRTUAL,
    source TEXT GENERATED ALWAYS AS (json_extract(doc, '$.source')) VIRTUAL,
    target TEXT GENERATED ALWAYS AS (json_extract(doc, '$.target')) VIRTUAL,
    processed TEXT GENERATED ALWAYS AS (json_extract(doc, '$.processed')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS files_drop ON files(drop_id);
CREATE INDEX IF NOT EXISTS files_source ON files(source);
CREATE INDEX IF NOT EXISTS files_target ON files(target);
CREATE INDEX IF NOT EXISTS files_processed ON files(processed);
"""


def next_rev(previous: str | None, body: dict[str, Any]) -> str:
    """CouchDB-style rev: generation + 1, then a hash of the previous rev and the new body."""
    generation = 0 if previous is None else int(previous.split("-", 1)[0])
    digest = hashlib.md5(f"{previous}{_dumps(body)}".encode(), usedforsecurity=False).hexdigest()
    return f"{generation + 1}-{digest}"


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _loads(row_id: str, rev: str, doc: str) -> dict[str, Any]:
    return {**json.loads(doc), "_id": row_id, "_rev": rev}


class SqliteStatusStore(StatusStore):
    """Status documents in one SQLite file; one connection per process and thread."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()  # a thread's own connection; it goes when the thread does
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Only the service account reads the status documents (SQLite gives -wal/-shm the same mode).
        try:
            # O_EXCL: never open (and close) an existing database file here. Closing any descriptor
            # of the file drops every POSIX lock this process holds on it, including those of
            # another store's live connections (a heartbeat thread, the next step in one process),
            # which SQLite then reports as a disk I/O error.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            if self.path.is_symlink():  # what O_NOFOLLOW refused before O_EXCL: never follow one
                raise RefusedError(f"status store {self.path}: is a symlink; refusing to use it") from None
        os.chmod(self.path, 0o600)
        with self._guard("create schema"):
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")

    def __repr__(self) -> str:
        return f"SqliteStatusStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        # Per thread (a new thread may reuse a dead one's ident), and per pid: a forked child
        # must never reuse its parent's connection.
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            # NORMAL in WAL mode never corrupts; a power cut may drop the last writes, which
            # only makes a drop run again (every step is idempotent).
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn SQLite failures (locked past the timeout, disk full, corrupt) into one line."""
        try:
            yield
        except sqlite3.Error as exc:
            raise RefusedError(f"status store {self.path}: {what} failed: {_explained(exc, self.path)}") from exc

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._guard(what):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._guard(what):
            return self._conn().execute(sql, params).fetchall()

    # --- drops ---------------------------------------------------------------------------

    def _read_drop(self, drop: str) -> dict[str, Any] | None:
        rows = self._query(f"read drop {drop}", "SELECT id, rev, doc FROM drops WHERE id = ?", (drop,))
        return _loads(*rows[0]) if rows else None

    def _write_drop(self, body: dict[str, Any], expected_rev: str | None) -> str | None:
        drop = body["_id"]
        rev = next_rev(expected_rev, body)
        with self._write(f"write drop {drop}") as conn:
            if expected_rev is None:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO drops (id, rev, doc) VALUES (?, ?, ?)", (drop, rev, _dumps(body))
                )
            else:
                cur = conn.execute(
                    "UPDATE drops SET rev = ?, doc = ? WHERE id = ? AND rev = ?",
                    (rev, _dumps(body), drop, expected_rev),
                )
        return rev if cur.rowcount == 1 else None

    def _create_drops(self, bodies: list[dict[str, Any]]) -> int:
        with self._write(f"register {len(bodies)} drops") as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO drops (id, rev, doc) VALUES (?, ?, ?)",
                ((b["_id"], next_rev(None, b), _dumps(b)) for b in bodies),
            )
            return conn.total_changes - before

    def _iter_drops(self, status: str | None) -> Iterator[dict[str, Any]]:
        if status is None:
            rows = self._query("list drops", "SELECT id, rev, doc FROM drops ORDER BY id")
        else:
            rows = self._query(
                f"list {status} drops",
                "SELECT id, rev, doc FROM drops WHERE status = ? ORDER BY id",
                (status,),
            )
        return (_loads(*row) for row in rows)

    def _count_by_status(self) -> dict[str, int]:
        rows = self._query("count drops", "SELECT status, count(*) FROM drops GROUP BY status")
        return {str(status): n for status, n in rows}

    # --- files ---------------------------------------------------------------------------

    def _read_files(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._query(
                "read files", f"SELECT id, rev, doc FROM files WHERE id IN ({marks})", tuple(chunk)
            ):
                out[row[0]] = _loads(*row)
        return out

    def _write_files(self, writes: list[tuple[dict[str, Any], str | None]]) -> set[str]:
        lost: set[str] = set()
        with self._write(f"write {len(writes)} file documents") as conn:
            for body, expected in writes:
                rev = next_rev(expected, body)
                if expected is None:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO files (id, rev, doc) VALUES (?, ?, ?)",
                        (body["_id"], rev, _dumps(body)),
                    )
                else:
                    cur = conn.execute(
                        "UPDATE files SET rev = ?, doc = ? WHERE id = ? AND rev = ?",
                        (rev, _dumps(body), body["_id"], expected),
                    )
                if cur.rowcount != 1:
                    lost.add(body["_id"])
        return lost

    def _find_files(self, path: str) -> list[dict[str, Any]]:
        rows = self._query(
            f"find file {path}",
            "SELECT id, rev, doc FROM files WHERE source = ?1 "
            "UNION SELECT id, rev, doc FROM files WHERE target = ?1 "
            "UNION SELECT id, rev, doc FROM files WHERE processed = ?1",
            (path,),
        )
        return [_loads(*row) for row in rows]

    def _drop_files(self, drop: str) -> list[dict[str, Any]]:
        rows = self._query(f"list files of {drop}", "SELECT id, rev, doc FROM files WHERE drop_id = ?", (drop,))
        return [_loads(*row) for row in rows]


def _explained(exc: sqlite3.Error, path: Path) -> str:
    """SQLite's text, naming a full disk when that is what "disk I/O error" means."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        try:
            full = os.statvfs(path.parent).f_bavail == 0
        except OSError:
            full = False
        if full:
            return f"no space left on the device holding {path.parent} ({exc})"
    return str(exc)
