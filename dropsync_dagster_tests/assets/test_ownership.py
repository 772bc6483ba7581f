"""The claim holds for the whole run: a step that outlives the lease keeps the drop (heartbeat),
and a second run is refused instead of writing LabKey rows of its own. Real CLI processes, the
LabKey test server with the real client, SQLite status store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster.resources.status import CouchStatusResource
from dropsync_dagster.cli.runner import first_failure
from dropsync_dagster_tests.assets.test_labkey_asset import labkey_drop, rows
from dropsync_dagster_tests.support.dagster_env import definitions_for, run_job
from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.fixtures.couchdb import CouchDBServer, free_port, running_pouchdb
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer
from dropsync_dagster_tests.test_status_integration import dropsync, plain_drop

LEASE = 3  # seconds


def test_a_step_that_outlives_the_lease_keeps_the_drop_and_rows_are_written_once(
        tmp_path: Path, labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    """Defect (issue 11): the lease was extended only when a step started; a second run took the
    drop over while the first was inside its LabKey step, and both inserted every row."""
    drop = labkey_drop(tmp_path, labkey_section)
    files = [fastq_relpath(read=r) for r in (1, 2, 3)]
    for rel in files:
        drop.add_file(rel)
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "DROPSYNC_LEASE_SECONDS": str(LEASE), "DROPSYNC_LABKEY_TIMEOUT": "150"}
    cmd = [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it", "--yes"]
    arrived, release = labkey_env.pause_next("insertRows")  # the first run's insert stalls at the server
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert arrived.wait(150), "the first run never sent its insert"
        time.sleep(LEASE + 1)  # the step has outlived the lease it had when it started
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    finally:
        release.set()
    assert first.wait(timeout=150) == 0, first.stderr.read()
    assert second.returncode == 3, second.stderr
    assert "is claimed by run" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert len(rows(labkey_env)) == len(files)  # one row per file
    assert labkey_env.count("insertRows") == 1
    assert all((drop.processed / rel).exists() for rel in files)


@contextmanager
def pouchdb_outage_at(hook_name: str, home: Path, port: int) -> Iterator[CouchDBServer]:
    """PouchDB Server (databases kept in `home`) that stops when the run reaches `hook_name`."""
    stack = ExitStack()
    server = stack.enter_context(running_pouchdb(home, port=port, in_memory=False))
    testhooks.install(hook_name, lambda **_: stack.close())
    try:
        yield server
    finally:
        testhooks.clear()
        stack.close()


def couch_status(server: CouchDBServer) -> CouchStatusResource:
    return CouchStatusResource(url=server.url, user=server.user, password=server.password, db="dropsync")


def test_a_run_that_failed_while_the_store_was_down_does_not_block_the_drop(tmp_path: Path) -> None:
    """Defect (issue 11): a CouchDB outage left the failed run's claim for the whole lease (15
    minutes): its failure path could not reach the store, and the next run was refused."""
    drop = plain_drop(tmp_path, files=2)
    home, port = tmp_path / "pouchdb", free_port()
    home.mkdir()
    with dg.instance_for_test() as instance:
        with pouchdb_outage_at("copied", home, port) as server:
            failed = run_job(drop, instance, status=couch_status(server))
        assert not failed.success  # its next step could not hold the claim
        with running_pouchdb(home, port=port, in_memory=False) as server:
            store = couch_status(server).store(drop.settings())
            left = store.get(drop.key)
            assert (left.status, left.owner) == ("processing", failed.run_id)  # its failure was never recorded
            again = run_job(drop, instance, status=couch_status(server))
            assert again.success  # the holder's Dagster run is finished: its claim is taken over
            assert store.get(drop.key).status == "synced"
    assert len(list(drop.processed.rglob("*.fastq.gz"))) == 2


def test_reset_force_releases_the_claim_of_a_finished_run_and_says_whose(tmp_path: Path) -> None:
    """Defect (issue 11): `dropsync reset` refused a drop whose claim a finished run left behind."""
    drop = plain_drop(tmp_path, files=1)
    assert dropsync(drop, "sync", str(drop.path), "--do-it", "--yes").returncode == 0
    store = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")
    run_id = store.get(drop.key).owner
    store.claim(drop.key, run_id, "elsewhere:1", 900)  # as a failure path that could not record it leaves it
    refused = dropsync(drop, "reset", drop.key)
    assert refused.returncode == 3 and f"claimed by run {run_id}" in refused.stderr
    done = dropsync(drop, "reset", "--force", drop.key)
    assert done.returncode == 0, done.stderr
    assert f"released the claim of run {run_id}" in done.stdout and "success" in done.stdout
    doc = store.get(drop.key)
    assert (doc.status, doc.lease_expires_at) == ("pending", None)


def test_every_run_checks_readiness_and_the_run_tag_overrides_it(tmp_path: Path) -> None:
    """Defect (issue 11): a run launched from the UI or a backfill synced a drop without its
    sentinel (its files may still be arriving)."""
    drop = plain_drop(tmp_path, files=1)
    (drop.path / ".ready").unlink()
    with dg.instance_for_test() as instance:
        refused = run_job(drop, instance)
        assert not refused.success
        assert first_failure(refused).startswith(f"step drop_manifest failed: drop {drop.key} is not ready: no sentinel")
        assert not any(drop.repository.iterdir()) and not (drop.settings().state_dir / "drops").exists()
        job = definitions_for(drop).resolve_job_def("sync_drop")
        forced = job.execute_in_process(partition_key=drop.key, instance=instance, raise_on_error=False,
                                        tags={"dropsync/ignore_readiness": "true"})
        assert forced.success
    doc = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3").get(drop.key)
    assert doc.status == "synced" and f"ignored by run {forced.run_id}" in doc.readiness_override
