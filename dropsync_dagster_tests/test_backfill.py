"""Backfills across historical drops, launched through the webserver's GraphQL API and run by
`dagster-daemon run` on deploy/dagster.yaml over Postgres: one run per drop, inside the limits,
and a second backfill over the same drops writes nothing new."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import dagster as dg

from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.dagster_procs import BIN, wait_until
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER

DROPS = 20
MAX_RUNS = 2  # concurrency.runs.max_concurrent_runs, lowered for 2 cores


def library(i: int) -> str:
    """Drop i's library name, so each drop has its own repository target."""
    return f"ABC_DEFG{chr(65 + i // 26)}{chr(65 + i % 26)}"


def historical_drops(base: Path, labkey: dict[str, Any]) -> list[Drop]:
    """DROPS ready drops under one root, each one FASTQ file of its own library."""
    drops = []
    for i in range(DROPS):
        drop = make_drop(base, f"run_2019-{i:02d}")
        drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey))
        drop.add_file(fastq_relpath(lib=library(i)), md5="correct")
        drop.mark_ready()
        drops.append(drop)
    return drops


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def finished(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.RunRecord]:
    """The backfill's runs once every one has finished (all of them: a failure ends the wait)."""
    records = backfill_runs(instance, backfill_id)
    done = len(records) >= DROPS and all(r.dagster_run.is_finished for r in records)
    return records if done or any(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in records) else []


def all_finished(instance: dg.DagsterInstance, quiet: float = 12.0) -> list[dg.RunRecord]:
    """Every run of the instance once none is queued or in progress and the last ended `quiet`
    seconds ago (the daemon evaluates sensors about every 5 s here), so that a tick which fell
    into the last moves has had its run requested."""
    records = list(instance.get_run_records())
    if not all(r.dagster_run.is_finished and r.end_time for r in records):
        return []
    return records if time.time() - max(r.end_time for r in records) >= quiet else []


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def materialization(instance: dg.DagsterInstance, run_id: str, asset: str) -> dict[str, Any]:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    mats = [r.asset_materialization for r in records if r.asset_materialization.asset_key == dg.AssetKey(asset)]
    assert len(mats) == 1, (run_id, asset, len(mats))
    return {k: v.value for k, v in mats[0].metadata.items()}


def repository_state(drops: list[Drop]) -> dict[str, tuple[int, int]]:
    """Every file in the repository: (inode, mtime_ns)."""
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in drops[0].repository.rglob("*") if p.is_file()}


def test_backfill_over_historical_drops(dagster_procs, tmp_path, gpg_keys, labkey_env, labkey_section) -> None:
    drops = historical_drops(tmp_path, labkey_section)
    keys = sorted(d.key for d in drops)
    state = tmp_path / "state"
    home = dagster_procs.home(drops[0].env(), max_concurrent_runs=MAX_RUNS, extra_env={
        "GNUPGHOME": gpg_keys.home, "DROPSYNC_GPG_RECIPIENTS": gpg_keys.recipients[0],
        "LABKEY_API_KEY": LABKEY_API_KEY, "NETRC": os.environ["NETRC"],
    })
    home.set_pool_limits()  # before any run: see docs/deploy.md, "Pools"
    registered = subprocess.run([str(BIN / "dropsync"), "register", str(drops[0].root)], env=home.env,
                                capture_output=True, text=True)
    assert registered.returncode == 0, registered.stderr
    instance = dagster_procs.enter(home.instance())
    assert sorted(instance.get_dynamic_partitions("drops")) == keys

    web = dagster_procs.webserver(home)
    first = web.launch_backfill("sync_drop", keys, "historical drops")
    daemon = dagster_procs.daemon(home)  # its first backfill iteration picks the backfill up at once
    wait_until(lambda: len(backfill_runs(instance, first)) == DROPS, 120, "the first backfill's runs", daemon, web)
    # The second backfill goes in while the first one's runs still queue: the limits keep them apart.
    second = web.launch_backfill("sync_drop", keys, "again")
    runs1 = wait_until(lambda: finished(instance, first), 600, "the first backfill to finish", daemon, web, every=2)
    runs2 = wait_until(lambda: finished(instance, second), 600, "the second backfill to finish", daemon, web, every=2)

    for records in (runs1, runs2):
        assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * DROPS, daemon.tail(200)
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == keys  # one run per drop
    every = runs1 + runs2
    assert max_overlap([(r.start_time, r.end_time) for r in every]) == MAX_RUNS  # reached, never exceeded
    by_key = {k: sorted((r for r in every if r.dagster_run.tags["dagster/partition"] == k), key=lambda r: r.start_time)
              for k in keys}
    for key, (earlier, later) in by_key.items():
        assert earlier.end_time <= later.start_time, f"{key}: two runs overlapped"
        assert earlier.dagster_run.tags["dagster/backfill"] == first  # queued first, ran first

    # A sensor tick between a move's link and its unlink sees fresh ctimes and requests one more run
    # of that drop (core/drops/watch.py), which finds nothing to do: let any such run finish too.
    others = wait_until(lambda: all_finished(instance), 300, "every other run to finish", daemon, web, every=2)
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in others), daemon.tail(200)

    # The first backfill synced every drop: copies, LabKey rows, archives, moves, status documents.
    store = SqliteStatusStore(state / DEFAULT_FILENAME)
    for drop in drops:
        assert not list(drop.path.rglob("*.fastq.gz"))
        doc = store.get(drop.key)
        assert doc is not None and doc.status == "synced"
    assert len(list(drops[0].processed.rglob("*.fastq.gz"))) == DROPS
    assert len(list(drops[0].repository.rglob("*.fastq.gz"))) == DROPS
    assert len(labkey_env.rows(LABKEY_CONTAINER, "exp", "data")) == DROPS
    assert sorted(p.name for p in (state / "archive").glob("*.tar.gpg")) == sorted(f"{k}.g1.tar.gpg" for k in keys)

    # The second backfill's runs wrote nothing: every repository file dates from its first run,
    # no copies, no LabKey writes, no moves, no new archive generation.
    for i, drop in enumerate(drops):
        written = list(drop.repository.rglob(f"{library(i)}_*"))
        assert len(written) == 2  # the copy and its sidecar
        assert all(p.stat().st_mtime <= by_key[drop.key][0].end_time for p in written)
    for record in runs2:
        run_id = record.dagster_run.run_id
        assert materialization(instance, run_id, "drop_manifest")["files"] == 0
        assert not any(k.startswith("outcome/copied") for k in materialization(instance, run_id, "repository_copies"))
        assert materialization(instance, run_id, "encrypted_archive")["nothing_new"] is True
    # What the UI's backfill page shows (its status turns COMPLETED at the daemon's next pass).
    backfill = web.graphql(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {"
        " numPartitions numCancelable partitionSetName } } }", {"id": second})["partitionBackfillOrError"]
    assert backfill == {"numPartitions": DROPS, "numCancelable": 0, "partitionSetName": "sync_drop_partition_set"}
