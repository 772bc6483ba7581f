"""Fixtures of the fault suite: one LabKey test server per worker, one world per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dropsync_dagster_tests.faults.world import World, build_world
from dropsync_dagster_tests.fixtures.couchdb import CouchDBDatabase
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys
from dropsync_dagster_tests.fixtures.labkey import start_labkey_server
from dropsync_dagster_tests.labkey_server import LabKeyTestServer


@pytest.fixture(scope="session")
def shared_labkey() -> Iterator[LabKeyTestServer]:
    """One LabKey test server per worker; each test writes its own container's table."""
    server = start_labkey_server()
    yield server
    server.stop()


@pytest.fixture
def world(tmp_path: Path, shared_labkey: LabKeyTestServer, couchdb_db: CouchDBDatabase,
          gpg_keys: GpgKeys) -> Iterator[World]:
    """A fresh drop with its own LabKey table, CouchDB database and proxies; snapshot taken."""
    shared_labkey.clear_faults()
    built = build_world(tmp_path, shared_labkey, couchdb_db, gpg_keys)
    built.snapshot()
    try:
        yield built
    finally:
        shared_labkey.clear_faults()
        built.labkey_proxy.down()
        built.couchdb.down()
