"""Fixtures of the fault suite: one LabKey test server per worker, one world per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.cli.runner import QUICK_START_INSTANCE
from dropsync_dagster_tests.faults.disks import SmallDisks
from dropsync_dagster_tests.faults.world import World, build_world
from dropsync_dagster_tests.fixtures.couchdb import CouchDBDatabase
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys
from dropsync_dagster_tests.fixtures.labkey import start_labkey_server
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer


@pytest.fixture(scope="session")
def shared_labkey() -> Iterator[LabKeyTestServer]:
    """One LabKey test server per worker; each test writes its own container's table."""
    server = start_labkey_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DAGSTER_HOME per worker for the CLI runs. Its storage is made here, once: CLI runs
    racing to create it on first use would trip over each other's schema migrations."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(QUICK_START_INSTANCE)
    dg.DagsterInstance.from_config(str(home)).dispose()
    return home


@pytest.fixture(scope="session")
def shared_instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance per worker for the job runs made in the test process."""
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def world(tmp_path: Path, shared_labkey: LabKeyTestServer, couchdb_db: CouchDBDatabase,
          gpg_keys: GpgKeys, shared_dagster_home: Path) -> Iterator[World]:
    """A fresh drop with its own LabKey table, CouchDB database and proxies; snapshot taken.
    In-process hooks (core.testhooks.install) are cleared after the test."""
    shared_labkey.clear_faults()
    built = build_world(tmp_path, shared_labkey, couchdb_db, gpg_keys, shared_dagster_home)
    built.snapshot()
    try:
        yield built
    finally:
        testhooks.clear()
        shared_labkey.clear_faults()
        built.labkey_proxy.down()
        built.couchdb.down()


@pytest.fixture
def small_disks() -> Iterator[SmallDisks]:
    """tmpfs mounts for disk-full faults, unmounted when the test ends."""
    disks = SmallDisks()
    try:
        yield disks
    finally:
        disks.unmount_all()
