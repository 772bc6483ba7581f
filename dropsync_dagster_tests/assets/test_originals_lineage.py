"""Lineage is written ahead of the moves: after a crash or a status-store outage between the moves
and the end of `archived_originals`, and a re-run, every moved original has a complete lineage
document. Real CLI processes (SIGKILL through a test hook), PouchDB Server stopped mid-step."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster_tests.assets.test_ownership import couch_status, pouchdb_outage_at
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath
from dropsync_dagster_tests.fixtures.couchdb import free_port, running_pouchdb
from dropsync_dagster_tests.test_status_integration import dropsync, plain_drop


def assert_complete_lineage(store: StatusStore, drop: Drop, files: int) -> None:
    """Every original is in processed, and its document says where it came from and went."""
    moved = sorted(drop.processed.rglob("*.fastq.gz"))
    assert len(moved) == files
    for processed in moved:
        doc = store.find_file(str(processed))
        assert doc is not None, f"no lineage for {processed}"
        assert doc.processed == str(processed) and doc.source and doc.target and Path(doc.target).exists()
        assert doc.checksums["source"]["blake3"] == doc.checksums["repository"]["blake3"]
        assert doc.model_extra["move"] == "moved"


def test_a_kill_after_the_moves_loses_no_lineage(tmp_path: Path) -> None:
    """Defect (issue 11): originals moved before a kill in `archived_originals` had no lineage;
    the re-run said "0 synced" and `dropsync lineage` knew nothing of them."""
    drop = plain_drop(tmp_path, files=3)
    hooks = json.dumps({"moved": "kill -KILL $DROPSYNC_HOOK_PID"})
    killed = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", env={"DROPSYNC_TEST_HOOKS": hooks})
    assert killed.returncode == -9
    assert len(list(drop.processed.rglob("*.fastq.gz"))) == 3  # the moves were done
    store = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")
    ahead = store.find_file(str(next(drop.processed.rglob("*.fastq.gz"))))
    assert ahead is not None and ahead.model_extra["move"] == "intended"  # written before the moves
    again = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert again.returncode == 0, again.stderr
    assert_complete_lineage(store, drop, 3)
    shown = dropsync(drop, "lineage", str(next(drop.processed.rglob("*.fastq.gz"))))
    assert shown.returncode == 0 and json.loads(shown.stdout)["move"] == "moved"


def test_a_store_outage_after_the_moves_loses_no_lineage(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, files=2)
    home, port = tmp_path / "pouchdb", free_port()
    home.mkdir()
    with dg.instance_for_test() as instance:
        with pouchdb_outage_at("moved", home, port) as server:
            assert not run_job(drop, instance, status=couch_status(server)).success
        assert len(list(drop.processed.rglob("*.fastq.gz"))) == 2
        with running_pouchdb(home, port=port, in_memory=False) as server:
            assert run_job(drop, instance, status=couch_status(server)).success
            assert_complete_lineage(couch_status(server).store(drop.settings()), drop, 2)
