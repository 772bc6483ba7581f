"""One drop registry: a run finds its drop's folder in the drop's status document, the roots are
scanned only for a document without a path, and the run-failure sensor counts a failure of a
drop whose folder is gone. Real runs on a test instance, SQLite status store."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.core.drops.registry import locate, register_at
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster.sensors import drop_failure_sensor
from dropsync_dagster_tests.assets.test_pipeline import plain_drop
from dropsync_dagster_tests.support.dagster_env import SQLITE_STATUS, run_job, storage_for
from dropsync_dagster_tests.support.drops import Drop


def status_store(drop: Drop) -> SqliteStatusStore:
    return SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")


def test_a_run_finds_its_folder_from_the_status_document(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    elsewhere = tmp_path / "moved_here" / "run_1"  # no longer under DROPSYNC_DROP_ROOTS
    elsewhere.parent.mkdir()
    drop.path.rename(elsewhere)
    status_store(drop).register(drop.key, str(elsewhere))
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
    assert result.success
    assert result.output_for_node("drop_manifest").drop_path == str(elsewhere)
    assert len(list(drop.processed.rglob("*.fastq.gz"))) == 2
    assert not (drop.settings().state_dir / "drops" / drop.key / "drop.json").exists()  # one registry


def test_the_roots_are_scanned_only_for_a_document_without_a_path(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    store, settings = status_store(drop), drop.settings()
    store.register(drop.key, "")  # as a document of an older version, without its path
    assert locate(store, settings, drop.key).path == drop.path
    register_at(store, drop.folder())  # `dropsync sync PATH` and `register` record it
    assert store.get(drop.key).path == str(drop.path)
    shutil.rmtree(drop.root)  # no root to scan: the document alone says where the drop is
    assert locate(store, settings, drop.key).path == drop.path
    with pytest.raises(ConfigError, match="partition 'seq-nowhere': its status document records no folder"):
        locate(store, settings, "seq-nowhere")


def test_the_failure_sensor_counts_a_failure_of_a_drop_whose_folder_is_gone(tmp_path: Path) -> None:
    """Defect (issue 13): the failure sensor looked the folder up and raised when it was gone."""
    drop = plain_drop(tmp_path)
    (drop.path / ".ready").unlink()  # the run is refused at its first step: a counted failure
    with dg.instance_for_test() as instance:
        failed = run_job(drop, instance)
        assert not failed.success
        shutil.rmtree(drop.path)
        event = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
        context = dg.build_run_status_sensor_context(
            sensor_name=drop_failure_sensor.name, dagster_event=event, dagster_instance=instance,
            dagster_run=instance.get_run_by_id(failed.run_id),
            resources={"storage": storage_for(drop.env()), "status": SQLITE_STATUS},
        ).for_run_failure()
        drop_failure_sensor(context)
    doc = status_store(drop).get(drop.key)
    assert doc is not None and doc.failure_count == 1 and doc.status == "pending"
