"""ClaimGuard: the heartbeat holds a claim past its lease; a lost claim or a dead store stops the
guarded step before its next irreversible action. Real stores: SQLite and PouchDB Server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dropsync_dagster.core.status import claim as claim_module
from dropsync_dagster.core.status.claim import ClaimGuard
from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster_tests.fixtures.couchdb import free_port, running_pouchdb

DROP = "inbox-run_001"
LEASE = 1.5  # seconds: the guarded work below outlives it several times


def claimed(store, owner: str = "run-A"):
    store.register(DROP, "/drops/run_001")
    store.claim(DROP, owner, "host:1", LEASE)
    return store


def test_heartbeat_holds_the_claim_while_a_step_outlives_its_lease(tmp_path: Path) -> None:
    store = claimed(SqliteStatusStore(tmp_path / "status.sqlite3"))
    with ClaimGuard(store, DROP, "run-A", LEASE) as guard:
        for _ in range(4):  # 3 leases long in all
            time.sleep(LEASE * 0.75)
            guard.check()
            with pytest.raises(RefusedError, match="claimed by run run-A"):
                store.claim(DROP, "run-B", "host:2", LEASE)  # a second run cannot take over
    assert store.get(DROP).owner == "run-A"


def test_a_run_that_lost_its_claim_is_stopped_at_its_next_check(tmp_path: Path) -> None:
    store = claimed(SqliteStatusStore(tmp_path / "status.sqlite3"))
    with ClaimGuard(store, DROP, "run-A", LEASE) as guard:
        guard.check()
        store.release(DROP, "run-A")  # e.g. `dropsync reset --force` after a mistaken diagnosis
        store.claim(DROP, "run-B", "host:2", LEASE)
        time.sleep(claim_module.RECHECK_SECONDS)
        with pytest.raises(RefusedError, match="run-A lost its claim"):
            guard.check()
        with pytest.raises(RefusedError):  # and it stays lost
            guard.check()
    assert store.get(DROP).owner == "run-B"


def test_a_guard_never_starts_for_a_drop_another_run_holds(tmp_path: Path) -> None:
    store = claimed(SqliteStatusStore(tmp_path / "status.sqlite3"), owner="run-B")
    with pytest.raises(RefusedError, match="does not own it"):
        with ClaimGuard(store, DROP, "run-A", LEASE):
            pytest.fail("the guarded block must not run")


def test_a_store_outage_longer_than_the_lease_stops_the_step(tmp_path: Path) -> None:
    home, port = tmp_path / "pouchdb", free_port()
    home.mkdir()
    with running_pouchdb(home, port=port, in_memory=False) as server:
        store = claimed(CouchDBStatusStore(server.url, "dropsync", server.user, server.password))
        guard = ClaimGuard(store, DROP, "run-A", LEASE).__enter__()
    try:  # the server is down now: the heartbeat fails, and the lease runs out
        time.sleep(LEASE * 1.2)
        with pytest.raises(RefusedError, match="could not keep its lease alive.*unreachable"):
            guard.check()
    finally:
        guard.__exit__(None, None, None)
    with running_pouchdb(home, port=port, in_memory=False):
        assert store.get(DROP).owner == "run-A"  # nothing was lost; the claim is simply expired
