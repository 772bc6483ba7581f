"""The status store inside the drop job and the CLI: claims, lineage, refusals, failures, reset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster.resources.status import CouchStatusResource
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config


def plain_drop(tmp_path: Path, files: int = 2, size: int | None = None) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    for read in range(1, files + 1):
        drop.add_file(fastq_relpath(read=read), os.urandom(size) if size else None)
    drop.mark_ready()
    return drop


def dropsync(drop: Drop, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **drop.env(), "DAGSTER_HOME": str(drop.root.parent / "dagster_home"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=full, capture_output=True, text=True, timeout=180)


def test_job_leaves_a_synced_document_and_one_lineage_document_per_file(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
    assert result.success
    store = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")
    doc = store.get(drop.key)
    assert doc.status == "synced" and doc.owner == result.run_id and doc.counts == {"moved": 2}
    for read in (1, 2):
        target = drop.repository / f"scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz"
        found = store.find_file(str(target))
        assert found is not None and found.relpath == fastq_relpath(read=read)
        assert found.processed == str(drop.processed / fastq_relpath(read=read))
        assert found.checksums["source"]["blake3"] == found.checksums["repository"]["blake3"]


def test_same_run_against_couchdb_writes_the_same_documents(tmp_path: Path, couchdb_db) -> None:
    drop = plain_drop(tmp_path)
    status = CouchStatusResource(url=couchdb_db.url, db=couchdb_db.db, user=couchdb_db.user,
                                 password=couchdb_db.password)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, status=status).success
    store = CouchDBStatusStore(couchdb_db.url, couchdb_db.db, couchdb_db.user, couchdb_db.password)
    assert store.get(drop.key).status == "synced"
    assert store.get_file(f"{drop.key}:{fastq_relpath(read=1)}").target.endswith("R1_001.fastq.gz")


def test_unreachable_couchdb_fails_the_run_before_any_file_is_touched(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    status = CouchStatusResource(url="http://127.0.0.1:9/")
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, status=status)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "drop_manifest"  # the claim precedes every write, the plan's included
    assert not list(drop.path.rglob("*.blake3")) and not any(drop.repository.iterdir())
    assert not (drop.settings().state_dir / "drops" / drop.key / "drop_manifest.json").exists()


def test_two_simultaneous_syncs_one_wins_one_is_refused(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, files=2, size=1 << 20)
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    cmd = [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it", "--yes"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((doc := store.get(drop.key)) and doc.status == "processing"):
        time.sleep(0.01)
    # Freeze the winner while it holds its claim, so the overlap does not depend on timing.
    first.send_signal(signal.SIGSTOP)
    try:
        second = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=180) == 0, first.stderr.read()
    assert second.returncode == 3, second.stderr
    assert f"is claimed by run {doc.owner}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    doc = json.loads(dropsync(drop, "status", drop.key, "--json").stdout)[0]
    assert doc["status"] == "synced" and doc["failure_count"] == 0
    assert len(list(drop.processed.rglob("*.fastq.gz"))) == 2


def test_failures_count_to_failed_and_reset_clears_them(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, files=1)
    # Every run fails in its last step: a folder sits where the originals result must be written.
    # (A file where a processed folder must go no longer fails a run: that original is held `exists`.)
    blocked = drop.settings().state_dir / "drops" / drop.key / "archived_originals.json"
    blocked.mkdir(parents=True)
    for attempt in (1, 2, 3):
        assert dropsync(drop, "sync", str(drop.path), "--do-it", "--yes").returncode == 3
        doc = json.loads(dropsync(drop, "status", drop.key, "--json").stdout)[0]
        assert doc["failure_count"] == attempt
    assert doc["status"] == "failed" and "archived_originals" in doc["last_error"]
    refused = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert refused.returncode == 3 and "dropsync reset" in refused.stderr
    assert json.loads(dropsync(drop, "status", drop.key, "--json").stdout)[0]["failure_count"] == 3
    blocked.rmdir()
    assert dropsync(drop, "reset", drop.key).returncode == 0
    assert dropsync(drop, "sync", str(drop.path), "--do-it", "--yes").returncode == 0
    table = dropsync(drop, "status")
    assert drop.key in table.stdout and "synced" in table.stdout


def test_lineage_finds_a_file_by_any_of_its_paths(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, files=1)
    assert dropsync(drop, "sync", str(drop.path), "--do-it", "--yes").returncode == 0
    target = drop.repository / "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz"
    by_target = json.loads(dropsync(drop, "lineage", str(target)).stdout)
    by_processed = json.loads(dropsync(drop, "lineage", str(drop.processed / fastq_relpath(read=1))).stdout)
    assert by_target == by_processed and by_target["source"] == str(drop.path / fastq_relpath(read=1))
    missing = dropsync(drop, "lineage", "/nowhere")
    assert missing.returncode == 2 and "no file document" in missing.stderr


def test_register_is_bulk_and_idempotent(tmp_path: Path) -> None:
    first = plain_drop(tmp_path)
    second = make_drop(tmp_path, "run_2")
    done = dropsync(first, "register", str(first.root))
    assert done.returncode == 0 and "2 drops: 2 new partitions, 2 new status documents" in done.stdout
    again = dropsync(first, "register", str(first.root))
    assert "2 drops: 0 new partitions, 0 new status documents" in again.stdout
    docs = json.loads(dropsync(first, "status", "--json").stdout)
    assert sorted(d["_id"] for d in docs) == sorted([first.key, second.key])
    assert {d["status"] for d in docs} == {"pending"}
