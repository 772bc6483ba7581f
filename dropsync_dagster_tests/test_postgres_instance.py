"""The production instance file, deploy/dagster.yaml, on a real Postgres: the drop job runs on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef  # no public way to open an instance from a folder

from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"


@pytest.fixture
def pg_instance(pg_database, tmp_path, monkeypatch):
    server, db = pg_database
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY, home / "dagster.yaml")
    for name, value in server.env(db).items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield instance, server, db


def test_drop_job_runs_on_the_postgres_instance(pg_instance, tmp_path) -> None:
    instance, server, db = pg_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.mark_ready()
    result = run_job(drop, instance)
    assert result.success
    assert (drop.processed / fastq_relpath(read=1)).exists()
    conn = server.connect(db)
    with conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'drops'")
        assert cur.fetchall() == [(drop.key,)]
    conn.close()
    materialized = instance.get_materialized_partitions(dg.AssetKey("archived_originals"))
    assert materialized == {drop.key}


def test_deploy_instance_limits_one_run_per_drop(pg_instance) -> None:
    instance, _, _ = pg_instance
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
