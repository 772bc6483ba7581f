"""One suite, run against both status stores: SQLite and a real CouchDB-compatible server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from dropsync_dagster.core.errors import DropsyncError, RefusedError
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster.core.status.files import FileDoc, file_id
from dropsync_dagster.core.status.sqlite import SqliteStatusStore

DROP = "inbox-run_001"


@dataclass
class StoreCase:
    """How to open one store, here and in child processes, and how to edit it by hand."""

    kind: str
    spec: dict[str, str]
    password: str = ""

    def open(self) -> StatusStore:
        """A new store object on the same storage (as another process would open it)."""
        if self.kind == "sqlite":
            return SqliteStatusStore(self.spec["path"])
        return CouchDBStatusStore(self.spec["url"], self.spec["db"], self.spec["user"], self.password)

    def hand_edit(self, drop: str, changes: dict[str, Any]) -> None:
        """Change a stored document the way a person would: straight in the database."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.spec["path"]) as conn:
                (doc,) = conn.execute("SELECT doc FROM drops WHERE id = ?", (drop,)).fetchone()
                rev = f"99-{os.urandom(16).hex()}"
                conn.execute(
                    "UPDATE drops SET doc = ?, rev = ? WHERE id = ?",
                    (json.dumps({**json.loads(doc), **changes}), rev, drop),
                )
            return
        auth = (self.spec["user"], self.password)
        url = f"{self.spec['url']}/{self.spec['db']}/{drop}"
        doc = requests.get(url, auth=auth, timeout=10).json()
        assert requests.put(url, json={**doc, **changes}, auth=auth, timeout=10).status_code == 201


@pytest.fixture(params=["sqlite", "couchdb"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    if request.param == "sqlite":
        return StoreCase("sqlite", {"path": str(tmp_path / "status.sqlite3")})
    couch = request.getfixturevalue("couchdb_db")
    return StoreCase("couchdb", {"url": couch.url, "db": couch.db, "user": couch.user}, couch.password)


@pytest.fixture
def store(case: StoreCase) -> StatusStore:
    return case.open()


def wait_past(moment: datetime | None) -> None:
    assert moment is not None
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)


def test_lifecycle(store: StatusStore) -> None:
    doc = store.register(DROP, "/drops/inbox/run_001")
    assert (doc.status, doc.failure_count, doc.path) == ("pending", 0, "/drops/inbox/run_001")
    claimed = store.claim(DROP, "run-A", "host:1", lease_seconds=60)
    assert (claimed.status, claimed.owner, claimed.worker_id) == ("processing", "run-A", "host:1")
    assert claimed.rev is not None and claimed.rev.startswith("2-")
    assert store.assert_owner(DROP, "run-A").rev == claimed.rev
    extended = store.extend_lease(DROP, "run-A", 600)
    assert extended.lease_expires_at and claimed.lease_expires_at
    assert extended.lease_expires_at > claimed.lease_expires_at
    synced = store.mark_synced(DROP, "run-A", {"go": 3, "md5_mismatch": 1})
    assert (synced.status, synced.counts, synced.lease_expires_at) == (
        "synced",
        {"go": 3, "md5_mismatch": 1},
        None,
    )
    assert store.get(DROP) == synced
    assert [d.id for d in store.list("synced")] == [DROP] and store.list("pending") == []
    assert store.count_by_status() == {"synced": 1}
    assert store.get("never-registered") is None


def test_register_is_idempotent_and_mark_changed_reopens_synced(store: StatusStore) -> None:
    first = store.register(DROP, "/a")
    assert store.register(DROP, "/elsewhere") == first
    store.claim(DROP, "run-A", "h:1", 60)
    assert store.register(DROP, "/a").status == "processing"
    assert store.mark_changed(DROP).status == "processing"  # only a synced drop reopens
    store.mark_synced(DROP, "run-A", {"go": 1})
    reopened = store.mark_changed(DROP)
    assert (reopened.status, reopened.counts) == ("pending", {"go": 1})


def test_register_many_in_bulk(store: StatusStore) -> None:
    store.register("d00000", "/d/0")
    store.claim("d00000", "run-A", "h:1", 60)
    drops = {f"d{i:05d}": f"/d/{i}" for i in range(1200)}  # more than one CouchDB page
    assert store.register_many(drops) == 1199
    assert store.register_many(drops) == 0
    assert len(store.list()) == 1200
    pending = store.list("pending")
    assert len(pending) == 1199 and "d00000" not in {d.id for d in pending}
    assert store.count_by_status() == {"pending": 1199, "processing": 1}


def test_live_claim_is_refused_naming_owner_then_taken_over_after_expiry(store: StatusStore) -> None:
    store.register(DROP, "/a")
    held = store.claim(DROP, "run-A", "hostA:1", lease_seconds=1.0)
    with pytest.raises(RefusedError, match="claimed by run run-A .*worker hostA:1.* until ") as refused:
        store.claim(DROP, "run-B", "hostB:2", lease_seconds=60)
    assert held.lease_expires_at and held.lease_expires_at.isoformat() in str(refused.value)
    wait_past(held.lease_expires_at)
    taken = store.claim(DROP, "run-B", "hostB:2", lease_seconds=60)
    assert (taken.owner, taken.worker_id) == ("run-B", "hostB:2")
    with pytest.raises(RefusedError, match="run run-A does not own it"):
        store.mark_synced(DROP, "run-A", {})
    assert store.get(DROP).status == "processing"


def test_same_owner_reclaims_live_drop(store: StatusStore) -> None:
    store.register(DROP, "/a")
    first = store.claim(DROP, "run-A", "h:1", 60)
    again = store.claim(DROP, "run-A", "h:2", 120)  # a retry of the same root run, elsewhere
    assert (again.owner, again.worker_id) == ("run-A", "h:2")
    assert (
        again.lease_expires_at and first.lease_expires_at and again.lease_expires_at > first.lease_expires_at
    )


def test_stranger_cannot_write(store: StatusStore) -> None:
    store.register(DROP, "/a")
    before = store.claim(DROP, "run-A", "h:1", 60)
    for attempt in (
        lambda: store.assert_owner(DROP, "stranger"),
        lambda: store.extend_lease(DROP, "stranger", 60),
        lambda: store.mark_synced(DROP, "stranger", {}),
        lambda: store.record_failure(DROP, "stranger", "boom"),
        lambda: store.record_failure(DROP, None, "boom"),  # a live holder is never overruled
        lambda: store.reset(DROP),
    ):
        with pytest.raises(RefusedError, match="stranger does not own|claimed by run run-A"):
            attempt()
    assert store.get(DROP) == before


def test_failures_count_to_failed_then_reset(store: StatusStore) -> None:
    store.register(DROP, "/a")
    for n in (1, 2):
        store.claim(DROP, "run-A", "h:1", 60)
        doc = store.record_failure(DROP, "run-A", f"error {n}")
        assert (doc.status, doc.failure_count, doc.last_error) == ("pending", n, f"error {n}")
    store.claim(DROP, "run-A", "h:1", 60)
    failed = store.record_failure(DROP, "run-A", "disk full")
    assert (failed.status, failed.failure_count, failed.last_error) == ("failed", 3, "disk full")
    with pytest.raises(RefusedError, match=f"failed 3 times .*disk full.*dropsync reset {DROP}"):
        store.claim(DROP, "run-B", "h:2", 60)
    reset = store.reset(DROP)
    assert (reset.status, reset.failure_count, reset.last_error) == ("pending", 0, None)
    assert store.claim(DROP, "run-B", "h:2", 60).owner == "run-B"
    assert store.record_failure(DROP, "run-B", "x", max_failures=1).status == "failed"


def test_synced_drop_is_claimable_again(store: StatusStore) -> None:
    store.register(DROP, "/a")
    store.claim(DROP, "run-A", "h:1", 60)
    store.mark_synced(DROP, "run-A", {"go": 1})
    assert store.claim(DROP, "run-B", "h:2", 60).status == "processing"


def test_unknown_or_invalid_status_is_reported_not_crashed(case: StoreCase, store: StatusStore) -> None:
    store.register_many({"good": "/g", "odd": "/o", "bad": "/b"})
    case.hand_edit("odd", {"status": "encrypted"})
    case.hand_edit("bad", {"failure_count": "many"})
    listed = {d.id: d for d in store.list()}
    assert not listed["good"].unknown and listed["odd"].unknown and listed["bad"].unknown
    assert listed["odd"].status == "encrypted" and "failure_count" in (listed["bad"].problem or "")
    assert [d.id for d in store.list("encrypted")] == ["odd"]
    with pytest.raises(DropsyncError, match="drop odd: .*unknown status 'encrypted'"):
        store.claim("odd", "run-A", "h:1", 60)
    with pytest.raises(DropsyncError, match="drop bad: status document is invalid .*failure_count"):
        store.reset("bad")
    assert store.reset("odd").status == "pending"


def test_file_documents_merge_and_are_found_by_each_path(store: StatusStore) -> None:
    src, tgt, done = "/drops/run_001/a.fastq.gz", "/repo/P1/a.fastq.gz", "/processed/run_001/a.fastq.gz"
    first = [
        FileDoc(
            relpath="a.fastq.gz", source=src, size=10, checksums={"source": {"blake3": "b1", "md5": "m1"}}
        ),
        FileDoc(relpath="sub/b.txt", source="/drops/run_001/sub/b.txt", size=3),
    ]
    assert store.put_files(DROP, first) == 2
    created = store.get_file(file_id(DROP, "a.fastq.gz"))
    assert created is not None and created.id == f"{DROP}:a.fastq.gz" and created.drop == DROP
    later = FileDoc(
        relpath="a.fastq.gz",
        target=tgt,
        checksums={"repository": {"blake3": "b1"}},
        archive={"path": "a.fastq.gz", "generation": 1},
        labkey_row_id=42,
        processed=done,
    )
    store.put_files(DROP, [later])
    doc = store.get_file(f"{DROP}:a.fastq.gz")
    assert doc is not None
    assert doc.checksums == {"source": {"blake3": "b1", "md5": "m1"}, "repository": {"blake3": "b1"}}
    assert (doc.source, doc.size, doc.target, doc.processed, doc.labkey_row_id) == (src, 10, tgt, done, 42)
    assert doc.archive is not None and doc.archive.generation == 1
    assert doc.created_at == created.created_at and doc.updated_at and created.updated_at
    assert doc.updated_at > created.updated_at
    assert [store.find_file(p).id for p in (src, tgt, done)] == [doc.id] * 3  # type: ignore[union-attr]
    assert store.find_file("/nowhere") is None
    assert store.get_file(f"{DROP}:missing") is None


def test_conflicting_write_is_retried_without_losing_the_rival_update(
    case: StoreCase, store: StatusStore
) -> None:
    store.register(DROP, "/a")
    claimed = store.claim(DROP, "run-A", "h:1", 60)
    reads: list[str] = []
    real_read = store._read_drop

    def read_then_rival_writes(drop: str) -> dict[str, Any] | None:
        seen = real_read(drop)
        reads.append(seen["_rev"] if seen else "")
        if len(reads) == 1:  # a steward edits the document between our read and our write
            case.hand_edit(drop, {"note": "checked by steward"})
        return seen

    store._read_drop = read_then_rival_writes  # type: ignore[method-assign]
    synced = store.mark_synced(DROP, "run-A", {"go": 2})
    assert len(reads) == 2 and reads[0] == claimed.rev and reads[1] != claimed.rev
    stored = case.open().get(DROP)
    assert stored is not None and stored == synced
    assert (stored.status, stored.counts, getattr(stored, "note", None)) == (
        "synced",
        {"go": 2},
        "checked by steward",
    )


CLAIMANT = """
import json, os, sys, time
from pathlib import Path
from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
a = json.loads(sys.argv[1])
s = a["spec"]
store = (SqliteStatusStore(s["path"]) if a["kind"] == "sqlite"
         else CouchDBStatusStore(s["url"], s["db"], s["user"], os.environ["CLAIMANT_PASSWORD"]))
store.get(a["drop"])  # connect (and set up) before the start signal
print("ready", flush=True)
while not os.path.exists(a["go"]):
    time.sleep(0.002)
try:
    store.claim(a["drop"], a["owner"], f"test:{os.getpid()}", a["lease"])
    print(json.dumps({"won": True}), flush=True)
except RefusedError as exc:
    print(json.dumps({"won": False, "error": str(exc)}), flush=True)
if a["hold"]:
    time.sleep(600)
"""


def start_claimants(
    case: StoreCase, owners: list[str], go: Path, lease: float, hold: bool = False
) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "CLAIMANT_PASSWORD": case.password}
    procs = []
    for owner in owners:
        args = {
            "kind": case.kind,
            "spec": case.spec,
            "drop": DROP,
            "owner": owner,
            "go": str(go),
            "lease": lease,
            "hold": hold,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CLAIMANT, json.dumps(args)], env=env, stdout=subprocess.PIPE, text=True
            )
        )
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return procs


def test_twenty_claimant_processes_one_winner(case: StoreCase, store: StatusStore, tmp_path: Path) -> None:
    store.register(DROP, "/a")
    owners = [f"run-{i:02d}" for i in range(20)]
    procs = start_claimants(case, owners, tmp_path / "go", lease=60)
    (tmp_path / "go").touch()
    results = {
        owner: json.loads(proc.communicate(timeout=60)[0]) for owner, proc in zip(owners, procs, strict=True)
    }
    winners = [owner for owner, result in results.items() if result["won"]]
    assert len(winners) == 1
    assert store.get(DROP).owner == winners[0]  # type: ignore[union-attr]
    for result in results.values():
        assert result["won"] or f"claimed by run {winners[0]}" in result["error"]


def test_killed_holder_is_taken_over_after_its_lease(
    case: StoreCase, store: StatusStore, tmp_path: Path
) -> None:
    store.register(DROP, "/a")
    (proc,) = start_claimants(case, ["run-killed"], tmp_path / "go", lease=2.0, hold=True)
    (tmp_path / "go").touch()
    assert proc.stdout is not None and json.loads(proc.stdout.readline()) == {"won": True}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with pytest.raises(RefusedError, match="claimed by run run-killed"):
        store.claim(DROP, "run-next", "h:2", 60)
    wait_past(store.get(DROP).lease_expires_at)  # type: ignore[union-attr]
    taken = store.claim(DROP, "run-next", "h:2", 60)
    assert (taken.owner, taken.worker_id) == ("run-next", "h:2")


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    SqliteStatusStore(tmp_path / "s.sqlite3").register(DROP, "/a")
    with sqlite3.connect(tmp_path / "s.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


_OTHER_PROCESS = """
import sys
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
SqliteStatusStore(sys.argv[1]).register_many({sys.argv[2]: "/drops/" + sys.argv[2]})
"""


def test_a_second_sqlite_store_in_a_process_keeps_the_first_ones_writes(tmp_path: Path) -> None:
    # Opening and closing the database file from Python would drop this process's POSIX locks
    # on it: another process closing its last connection then deletes the -wal and -shm files
    # under ours, whose later writes go to an unlinked WAL (lost, then "disk I/O error").
    path = str(tmp_path / "status.sqlite3")
    first = SqliteStatusStore(path)
    assert first.get("mine") is None  # this process's connection is open
    SqliteStatusStore(path)  # e.g. a step's own store while the heartbeat thread holds one
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, path, "theirs1"], check=True)
    first.register_many({"mine": "/drops/mine"})
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, path, "theirs2"], check=True)
    first.register_many({"mine2": "/drops/mine2"})
    fresh = sqlite3.connect(path)
    ids = {row[0] for row in fresh.execute("SELECT id FROM drops")}
    fresh.close()
    assert {"mine", "mine2", "theirs1", "theirs2"} <= ids
