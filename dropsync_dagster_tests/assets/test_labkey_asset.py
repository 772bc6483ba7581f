"""labkey_records in the drop job, against the LabKey test server through the real `labkey` client:
rows inserted/updated once, row ids recorded, originals moved only for recorded files, faults."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dropsync_dagster.core.result_files import ResultFiles
from dropsync_dagster.core.results import LabKeyResult
from dropsync_dagster.core.status.runs import record_run_failure
from dropsync_dagster.core.status.files import file_id
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER, LABKEY_READER_KEY
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

FAST = LabKeyResource(api_key=LABKEY_API_KEY, attempts=3, retry_delay=0.01, timeout=5)
TARGET_DIR = "scRNA/raw/btki/ABC_DEFGHI"


def target(drop: Drop, read: int) -> str:
    return str(drop.repository / TARGET_DIR / f"ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz")


def labkey_drop(tmp_path: Path, section: dict[str, Any], **overrides: Any) -> Drop:
    """The seed config pointed at the test server, plus the auto-filled name and checksum fields."""
    drop = make_drop(tmp_path)
    config = seed_config(drop.repository, drop.processed, labkey=section)
    config["fields"] = {**config["fields"], "Uploaded File Name": None, "Checksum": None}
    config.update(overrides)
    drop.write_config(config)
    drop.mark_ready()
    return drop


def rows(server: LabKeyTestServer) -> list[dict[str, Any]]:
    return server.rows(LABKEY_CONTAINER, "exp", "data")


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def after_failure(drop: Drop, result: dg.ExecuteInProcessResult) -> None:
    """What the run-failure sensor does for a failed run: count it and release the drop."""
    store = SqliteStatusStore(drop.settings().state_dir / DEFAULT_FILENAME)
    record_run_failure(store, drop.key, str(drop.path), result.run_id, "failed", 3)


def labkey_result(drop: Drop) -> LabKeyResult:
    """The labkey_records result on disk, of whichever plan (a failed run's included)."""
    found = ResultFiles(drop.settings().state_dir, drop.key).read("labkey_records", LabKeyResult)
    assert found is not None, "no labkey_records result"
    return found


def test_rows_inserted_and_updated_once_with_ids_recorded(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                          labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2), md5="wrong")
    drop.add_file(fastq_relpath(read=3))
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "old", "Path_To_Synced_Data": target(drop, 3)}])
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=FAST)
        assert result.success
    assert checks(result)["labkey_rows_present"] is True
    stored = {r["Path_To_Synced_Data"]: r for r in rows(labkey_env)}
    assert sorted(stored) == [target(drop, 1), target(drop, 3)]  # nothing for the md5 mismatch
    r1, r3 = stored[target(drop, 1)], stored[target(drop, 3)]
    assert r3["RowId"] == 1 and r3["Name"] == "ABC_DEFGHI_SEQ_ABCDE_r1"  # updated in place
    assert r1["Checksum"] == hashlib.md5(fastq_content(fastq_relpath(read=1))).hexdigest()
    assert r3["Checksum"] == hashlib.md5(fastq_content(fastq_relpath(read=3))).hexdigest()
    assert (r1["Uploaded_File_Name"], r1["Run_Number"], r1["Data_synced"]) == ("ABC_DEFGHI_S1_L001_R1_001.fastq.gz", 1, True)
    recorded = labkey_result(drop)
    assert {rel: (f.action, f.row_id) for rel, f in recorded.files.items()} == {
        fastq_relpath(read=1): ("inserted", r1["RowId"]), fastq_relpath(read=3): ("updated", 1),
        fastq_relpath(read=2): ("held", None)}
    assert recorded.files[fastq_relpath(read=2)].reason == "md5_mismatch"
    assert not (drop.path / fastq_relpath(read=1)).exists() and (drop.path / fastq_relpath(read=2)).exists()
    store = SqliteStatusStore(drop.settings().state_dir / DEFAULT_FILENAME)
    assert store.get_file(file_id(drop.key, fastq_relpath(read=1))).labkey_row_id == r1["RowId"]


def test_skip_creates_holds_copy_and_move(tmp_path: Path, labkey_env: LabKeyTestServer,
                                          labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section, writeback={"skip_creates": True})
    drop.add_file(fastq_relpath(read=1))
    drop.add_file(fastq_relpath(read=2))
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "x", "Path_To_Synced_Data": target(drop, 2)}])
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, labkey=FAST).success
    assert len(rows(labkey_env)) == 1 and rows(labkey_env)[0]["Data_synced"] is True
    assert not Path(target(drop, 1)).exists() and (drop.path / fastq_relpath(read=1)).exists()
    assert Path(target(drop, 2)).exists() and not (drop.path / fastq_relpath(read=2)).exists()


def test_drop_without_labkey_records_not_configured(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1))
    drop.mark_ready()
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
        assert result.success
        meta = result.asset_materializations_for_node("labkey_records")[0].metadata
    assert meta["configured"].value is False and "no labkey section" in meta["why"].value
    assert checks(result)["labkey_rows_present"] is True
    assert (drop.processed / fastq_relpath(read=1)).exists()


def test_failed_write_keeps_copies_and_originals_and_rerun_completes_without_duplicates(
        tmp_path: Path, labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    files = [fastq_relpath(read=r, sample=s) for s in (1, 2) for r in (1, 2)]
    for rel in files:
        drop.add_file(rel)
    # The insert lands, but its reply never arrives, and no attempt is left to find out.
    labkey_env.drop_next(1, action="insertRows", after_processing=True)
    with dg.instance_for_test() as instance:
        once = LabKeyResource(api_key=LABKEY_API_KEY, attempts=1, retry_delay=0.01, timeout=5)
        failed = run_job(drop, instance, labkey=once)
        assert not failed.success
        assert len(rows(labkey_env)) == 4
        assert all((drop.path / rel).exists() for rel in files)  # originals stay
        copies = sorted(p.name for p in drop.repository.rglob("*.fastq.gz"))
        assert len(copies) == 4
        assert labkey_result(drop).complete is False
        after_failure(drop, failed)
        again = run_job(drop, instance, labkey=FAST)
        assert again.success, again
    assert len(rows(labkey_env)) == 4  # found by the presence check: updated, not inserted again
    assert sorted(p.name for p in drop.repository.rglob("*.fastq.gz")) == copies
    assert all((drop.processed / rel).exists() for rel in files)
    assert labkey_result(drop).inserted == 0 and labkey_env.count("insertRows") == 1


@pytest.mark.parametrize("fault", ["commit_then_500", "commit_then_drop", "commit_then_hang"])
def test_a_committed_insert_whose_reply_fails_is_never_inserted_twice(
        tmp_path: Path, labkey_env: LabKeyTestServer, labkey_section: dict[str, Any], fault: str) -> None:
    """Defect (issue 11): the server committed an insert and answered 500; the insert was sent
    again and every file got two rows. Now the batch's presence keys are read again instead."""
    drop = labkey_drop(tmp_path, labkey_section)
    files = [fastq_relpath(read=r, sample=s) for s in (1, 2, 3) for r in (1, 2)]
    for rel in files:
        drop.add_file(rel)
    if fault == "commit_then_500":
        labkey_env.fail_next(1, status=500, action="insertRows", after_processing=True)
    elif fault == "commit_then_drop":
        labkey_env.drop_next(1, action="insertRows", after_processing=True)
    else:  # the reply comes after the client's timeout
        labkey_env.set_delay(3.0, action="insertRows", n=1, after_processing=True)
    with dg.instance_for_test() as instance:
        impatient = LabKeyResource(api_key=LABKEY_API_KEY, attempts=3, retry_delay=0.01, timeout=1)
        result = run_job(drop, instance, labkey=impatient)
        assert result.success
    stored = rows(labkey_env)
    assert len(stored) == len({r["Path_To_Synced_Data"] for r in stored}) == len(files)  # one row per file
    assert labkey_env.count("insertRows") == 1
    recorded = labkey_result(drop)
    assert recorded.complete and sorted(f.row_id for f in recorded.files.values()) == sorted(r["RowId"] for r in stored)
    assert all((drop.processed / rel).exists() for rel in files)


def test_500_on_insert_fails_the_run_after_retries_and_originals_stay(
        tmp_path: Path, labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1))
    labkey_env.fail_next(10, status=500, action="insertRows")
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=FAST)
        assert not result.success
        labkey_env.clear_faults()
        assert labkey_env.count("insertRows") == 3  # bounded retries of a transacted save
        assert rows(labkey_env) == []
        assert Path(target(drop, 1)).exists() and (drop.path / fastq_relpath(read=1)).exists()
        after_failure(drop, result)
        assert run_job(drop, instance, labkey=FAST).success
    assert [r["Path_To_Synced_Data"] for r in rows(labkey_env)] == [target(drop, 1)]
    assert not (drop.path / fastq_relpath(read=1)).exists()


def test_bad_credentials_fail_the_manifest_with_one_clear_line_and_no_retries(
        tmp_path: Path, labkey_server: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1))
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=LabKeyResource(api_key="wrong-key", attempts=3, retry_delay=0.01))
        assert not result.success
    step, message = step_failure(result)
    assert step == "drop_manifest"
    assert "refused the credentials (401)" in message and "wrong-key" not in message
    assert labkey_server.count("selectRows") == 1
    assert not Path(target(drop, 1)).exists()


def step_failure(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """(step key, first line of the error) of the run's one failed step."""
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    return failure.step_key, error.message.strip()


@pytest.mark.parametrize("fault", ["unreachable", "wrong_container"])
def test_labkey_fault_at_planning_fails_the_manifest_and_copies_nothing(
        tmp_path: Path, labkey_env: LabKeyTestServer, labkey_section: dict[str, Any], fault: str) -> None:
    section = {**labkey_section, "container": "No Such Project"} if fault == "wrong_container" else labkey_section
    drop = labkey_drop(tmp_path, section)
    drop.add_file(fastq_relpath(read=1))
    if fault == "unreachable":
        labkey_env.stop()
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=FAST)
        assert not result.success
    step, message = step_failure(result)
    assert step == "drop_manifest" and "\n" not in message
    assert ("LabKey is unreachable after 3 attempts" if fault == "unreachable" else "No such project: /No Such Project") in message
    assert list(drop.repository.rglob("*")) == [] and (drop.path / fastq_relpath(read=1)).exists()


def test_403_on_write_is_a_credentials_message_without_retries(
        tmp_path: Path, labkey_server: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1))
    reader = LabKeyResource(api_key=LABKEY_READER_KEY, attempts=3, retry_delay=0.01)  # may read, not write
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=reader)
        assert not result.success
    step, message = step_failure(result)
    assert step == "labkey_records" and "refused the credentials (403)" in message and LABKEY_READER_KEY not in message
    assert labkey_server.count("insertRows") == 1
    assert Path(target(drop, 1)).exists() and (drop.path / fastq_relpath(read=1)).exists()


def test_result_json_names_every_row(tmp_path: Path, labkey_env: LabKeyTestServer,
                                          labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1))
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, labkey=FAST).success
    doc = json.loads(ResultFiles(drop.settings().state_dir, drop.key).path("labkey_records").read_text())
    assert doc["complete"] is True and doc["table"] == "exp.data" and doc["key_column"] == "RowId"
    assert doc["files"][fastq_relpath(read=1)]["row_id"] == rows(labkey_env)[0]["RowId"]
