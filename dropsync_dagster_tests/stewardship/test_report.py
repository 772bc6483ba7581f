"""`dropsync report` through the real CLI (CSV and JSON) and the stewardship job through Dagster:
the numbers match a known set of drops — synced, holding a file, failed in an earlier month."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.status.runs import record_run_failure
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster.stewardship.jobs import RECONCILED_CHECK
from dropsync_dagster_tests.support.dagster_env import definitions_for, run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config


def add_drop(base: Path, name: str, reads: dict[int, str]) -> Drop:
    """A drop without LabKey whose reads have a right or wrong `.md5` (`correct` | `wrong`)."""
    drop = make_drop(base, name)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
                                  repository_folder=str(drop.repository / name)))
    for read, md5 in reads.items():
        drop.add_file(fastq_relpath(read=read), md5=md5)  # type: ignore[arg-type]
    drop.mark_ready()
    return drop


def known_drops(tmp_path: Path, instance: dg.DagsterInstance) -> tuple[Drop, SqliteStatusStore]:
    """Two synced drops (3 files synced, 1 held) this month; one drop failed in October 2026."""
    a = add_drop(tmp_path, "run_a", {1: "correct", 2: "correct"})
    b = add_drop(tmp_path, "run_b", {1: "correct", 2: "wrong"})
    c = add_drop(tmp_path, "run_c", {1: "correct"})
    assert run_job(a, instance).success and run_job(b, instance).success
    store = SqliteStatusStore(a.settings().state_dir / DEFAULT_FILENAME)
    for attempt in range(3):
        record_run_failure(store, c.key, str(c.path), f"run-{attempt}", "LabKey unreachable", 3)
    with store._conn() as conn:  # the failure happened in October (a hand edit of its time)
        conn.execute("UPDATE drops SET doc = json_set(doc, '$.updated_at', '2026-10-15T08:00:00+00:00') WHERE id = ?",
                     (c.key,))
    return a, store


def dropsync(drop: Drop, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(drop.root.parent / "dagster_home")}
    env.pop("DROPSYNC_COUCHDB_URL", None)
    return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def synced_bytes(*reads: int) -> int:
    return sum(len(fastq_content(fastq_relpath(read=r))) for r in reads)


def test_report_counts_per_month_as_csv_and_json(tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        drop, store = known_drops(tmp_path, instance)
    month = store.get(drop.key).updated_at.strftime("%Y-%m")  # type: ignore[union-attr]
    done = dropsync(drop, "report")
    assert done.returncode == 0, done.stderr
    assert list(csv.DictReader(io.StringIO(done.stdout))) == [
        {"period": "2026-10", "drops": "1", "drops_synced": "0", "drops_failed": "1", "files_synced": "0",
         "bytes_synced": "0", "files_held": "0"},
        {"period": month, "drops": "2", "drops_synced": "2", "drops_failed": "0", "files_synced": "3",
         "bytes_synced": str(synced_bytes(1, 2, 1)), "files_held": "1"},
    ]
    shown = dropsync(drop, "report", "--since", "2026-11-01", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert [(r["period"], r["files_synced"], r["files_held"]) for r in json.loads(shown.stdout)] == [(month, 3, 1)]
    october = json.loads(dropsync(drop, "report", "--until", "2026-10-31", "--format", "json").stdout)
    assert [(r["period"], r["drops_failed"]) for r in october] == [("2026-10", 1)]


def test_the_stewardship_job_reports_plottable_numbers_and_checks_reconciliation(tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        drop, _ = known_drops(tmp_path, instance)
        stray = drop.repository / "run_a" / "stray.fastq.gz"
        stray.write_bytes(b"put there by hand")
        job = definitions_for(drop).resolve_job_def("stewardship")
        result = job.execute_in_process(instance=instance)
        assert result.success
        report = instance.get_latest_materialization_event(dg.AssetKey("stewardship_report"))
        found = instance.get_latest_materialization_event(dg.AssetKey("reconciliation"))
    meta = report.asset_materialization.metadata  # type: ignore[union-attr]
    assert isinstance(meta["month/files_synced"], dg.IntMetadataValue)  # numbers: the UI plots them
    assert (meta["month/files_synced"].value, meta["month/files_held"].value) == (3, 1)
    assert (meta["total/drops_failed"].value, meta["total/bytes_synced"].value) == (1, synced_bytes(1, 2, 1))
    findings = found.asset_materialization.metadata  # type: ignore[union-attr]
    assert (findings["findings/no_lineage"].value, findings["findings"].value) == (1, 1)
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.severity) == (RECONCILED_CHECK, False, dg.AssetCheckSeverity.WARN)
    assert str(stray) in check.metadata["first"].value
