"""core.labkey_plan against the LabKey test server through the real `labkey` client: write actions,
batched presence checks, skip_creates, presence-key collisions, dry-run diffs, faults at planning."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dropsync_dagster.core.syncyml.schema import load_config
from dropsync_dagster.core.errors import ConfigError, RefusedError
from dropsync_dagster.core.labkey.connection import LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey.planning import WritebackTable, create_rows, plan_drop, update_diff_rows, writeback_connection
from dropsync_dagster.core.steps.labkey_records import rows_problems, write_records
from dropsync_dagster.core.labkey.transport import RetryPolicy
from dropsync_dagster.core.model import Digests, Plan, Reason, WriteAction
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileChecksum, FileCopy, LabKeyResult
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

FAST = RetryPolicy(attempts=2, base_delay=0.01, timeout=5)
NOW = datetime(2026, 11, 21, 9, 30, 5, tzinfo=timezone.utc)
TARGET_DIR = "scRNA/raw/btki/ABC_DEFGHI"


def fast_client(connection: LabKeyConnection) -> LabKeyClient:
    return LabKeyClient(connection, api_key=LABKEY_API_KEY, retry=FAST, lookup_values=100)


def labkey_drop(tmp_path: Path, section: dict[str, Any], **overrides: Any) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=section, **overrides))
    return drop


def plan(drop: Drop) -> Plan:
    return plan_drop(drop.folder(), load_config(drop.config_path), drop.settings(), fast_client, now=NOW)


def target(drop: Drop, read: int) -> str:
    return str(drop.repository / TARGET_DIR / f"ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz")


def by_file(result: Plan) -> dict[str, Any]:
    return {e.relpath: e for e in result.entries}


def test_write_actions_and_requests_grow_with_batches(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                      labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    files = [fastq_relpath(lib=f"ABC_DEFG{chr(65 + i // 26)}{chr(65 + i % 26)}") for i in range(250)]
    for rel in files:
        drop.add_file(rel)
    first = plan(drop)
    existing = [e.target for e in first.entries[:40]]
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "old", "Path_To_Synced_Data": t} for t in existing])
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "elsewhere", "Path_To_Synced_Data": "/other/x.gz"}])
    labkey_env.reset_counters()
    again = plan(drop)
    actions = [e.write_action for e in again.entries]
    assert actions.count(WriteAction.UPDATE) == 40 and actions.count(WriteAction.CREATE) == 210
    assert {e.labkey_row["key"] for e in again.entries if e.labkey_row} == set(range(1, 41))
    assert all(e.presence_key == e.target for e in again.entries)
    # 250 targets are 3 batches of 100; the 40 rows naming their common folder fit in one page: read those.
    assert labkey_env.count("selectRows") == 1 + 1
    # With more rows under that folder than pages (10 rows a page here): the batches after 2 pages.
    labkey_env.reset_counters()
    small_pages = plan_drop(drop.folder(), load_config(drop.config_path), drop.settings(),
                            lambda c: LabKeyClient(c, api_key=LABKEY_API_KEY, retry=FAST, lookup_values=100, page_size=10), now=NOW)
    assert [e.model_dump() for e in small_pages.entries] == [e.model_dump() for e in again.entries]
    assert labkey_env.count("selectRows") == 1 + 2 + (4 + 1 + 1)  # the first batch's 40 rows are 4 pages


def test_skip_creates_and_rows_without_a_key_stop_the_file(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                          labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section, writeback={"skip_creates": True})
    drop.add_file(fastq_relpath(read=1))
    drop.add_file(fastq_relpath(read=2))
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "x", "Path_To_Synced_Data": target(drop, 2)}])
    got = by_file(plan(drop))
    assert (got[fastq_relpath(read=1)].write_action, got[fastq_relpath(read=1)].reason) == (
        WriteAction.SKIP_CREATE, Reason.WRITEBACK_SKIPPED)
    assert (got[fastq_relpath(read=2)].write_action, got[fastq_relpath(read=2)].reason) == (WriteAction.UPDATE, None)
    # A table without a primary key: an existing row cannot be updated, and is not duplicated either.
    labkey_env.create_table(LABKEY_CONTAINER, "lists", "NoKey", ["Name", "Path_To_Synced_Data"], key=None)
    labkey_env.insert(LABKEY_CONTAINER, "lists", "NoKey", [{"Name": "x", "Path_To_Synced_Data": target(drop, 2)}])
    drop.write_config(seed_config(drop.repository, drop.processed, labkey={**labkey_section, "schema": "lists", "table": "NoKey"},
                                  fields={"Name": "<lib>", "Path_To_Synced_Data": None}))
    got = by_file(plan(drop))
    assert (got[fastq_relpath(read=2)].write_action, got[fastq_relpath(read=2)].reason) == (
        WriteAction.SKIP_CREATE, Reason.WRITEBACK_SKIPPED)
    assert got[fastq_relpath(read=1)].write_action is WriteAction.CREATE


def test_shared_presence_key_is_a_collision_unless_aggregated(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                              labkey_section: dict[str, Any]) -> None:
    fields = {"Name": "<lib>_<seq>", "Path_To_Synced_Data": None, "Run_Number": "<run>"}
    drop = labkey_drop(tmp_path, labkey_section, fields=fields, presence_check={"field": "Name", "match": "equal"})
    drop.add_file(fastq_relpath(read=1))
    drop.add_file(fastq_relpath(read=2))
    drop.add_file(fastq_relpath(lib="XYZ_QWERTY"))
    got = by_file(plan(drop))
    assert [got[fastq_relpath(read=r)].reason for r in (1, 2)] == [Reason.DUPLICATE_PRESENCE_KEY] * 2
    assert got[fastq_relpath(lib="XYZ_QWERTY")].reason is None
    assert got[fastq_relpath(read=1)].presence_key == "ABC_DEFGHI_SEQ_ABCDE"
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey_section, fields=fields,
                                  presence_check={"field": "Name", "match": "equal"},
                                  field_parameters={"Path_To_Synced_Data": "file_list_aggregator"}))
    aggregated = plan(drop)
    assert all(e.reason is None for e in aggregated.entries)
    (row,) = [r for r in create_rows(aggregated) if r["Name"] == "ABC_DEFGHI_SEQ_ABCDE"]
    assert row["Path_To_Synced_Data"] == f"{target(drop, 1)} ⏎ {target(drop, 2)}"
    assert row["files"] == f"{fastq_relpath(read=1)} (+1)"
    # Two existing rows for one key: never a silent pick.
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "XYZ_QWERTY_SEQ_ABCDE"}, {"Name": "XYZ_QWERTY_SEQ_ABCDE"}])
    assert by_file(plan(drop))[fastq_relpath(lib="XYZ_QWERTY")].reason is Reason.DUPLICATE_PRESENCE_KEY


def test_update_diffs_and_planned_creates(tmp_path: Path, labkey_env: LabKeyTestServer,
                                          labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1), mtime=datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc).timestamp())
    drop.add_file(fastq_relpath(read=2))
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{
        "Name": "ABC_DEFGHI_SEQ_ABCDE_r1", "Project_Phase": "old", "Run_Number": 1, "Data_synced": True,
        "Date_Of_Uploading": "2026-11-20 07:00:00", "Path_To_Synced_Data": target(drop, 1)}])
    result = plan(drop)
    diffs = {r["field"]: (r["from"], r["to"], r["changes"]) for r in update_diff_rows(result)}
    assert diffs == {
        "Name": ("ABC_DEFGHI_SEQ_ABCDE_r1", "ABC_DEFGHI_SEQ_ABCDE_r1", "no"),
        "Project_Phase": ("old", "btki", "yes"),
        "Run_Number": ("1", "1", "no"),
        "Uploaded_Filename_Prefix": ("", "ABC_DEFGHI_S1_L001", "yes"),
        "Data_synced": ("True", "True", "no"),
        "Date_Of_Syncing": ("", "2026-11-21 09:30:05", "yes"),  # now() is the plan's created_at
        "Date_Of_Uploading": ("2026-11-20 07:00:00.000", "2026-11-20 07:00:00", "no"),
        "Path_To_Synced_Data": (target(drop, 1), target(drop, 1), "no"),
    }
    assert {r["row"] for r in update_diff_rows(result)} == {"RowId=1"}
    (create,) = create_rows(result)
    assert create["files"] == fastq_relpath(read=2) and create["Path_To_Synced_Data"] == target(drop, 2)
    assert create["Date_Of_Syncing"] == "2026-11-21 09:30:05"


def test_metadata_sources_feed_targets_and_fields(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                  labkey_section: dict[str, Any]) -> None:
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "MTR-A-001_V01", "Uploaded_Filename_Prefix": "ABC_DEFGHI_S1_L001"}])
    drop = labkey_drop(
        tmp_path, labkey_section,
        metadata_sources=[{"name": "lk", "type": "labkey", "schema": "exp", "table": "data", "columns": ["Name"],
                           "filters": [{"field": "Name", "type": "startswith", "value": "MTR-"}]}],
        metadata_match={"key_template": "<prefix>", "search": [{"source": "lk", "field": "Uploaded Filename Prefix"}]},
        metadata_required=True,
        metadata_derive=[{"source": "lk", "field": "Name", "regex": r"^(?P<patient>MTR-[A-Z]-\d{3})_(?P<visit>V\d{2})"}],
        repository_filename="<patient>/<visit>/<lk.Name>_r<run>__<suffix>.fastq.gz",
        fields={"Name": "<lk.Name>", "Project_Phase": "<visit>", "Path_To_Synced_Data": None},
    )
    drop.add_file(fastq_relpath(sample=1))
    drop.add_file(fastq_relpath(sample=2))
    got = by_file(plan(drop))
    hit, miss = got[fastq_relpath(sample=1)], got[fastq_relpath(sample=2)]
    assert hit.target_relpath == "MTR-A-001/V01/MTR-A-001_V01_r1__R1_001.fastq.gz"
    assert hit.write_action is WriteAction.CREATE and miss.reason is Reason.METADATA_MISSING
    (create,) = create_rows(plan(drop))
    assert (create["Name"], create["Project_Phase"]) == ("MTR-A-001_V01", "V01")


def test_configuration_errors_and_faults_at_planning(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                     labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section, fields={"Nmae": "<lib>", "Path_To_Synced_Data": None})
    drop.add_file(fastq_relpath(read=1))
    with pytest.raises(ConfigError, match=r"field 'Nmae' matches no column of exp.data; its columns are: RowId .*Name"):
        plan(drop)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey_section,
                                  fields={"Name": "<lib>"}, field_parameters={"Name": "file_list"}))
    with pytest.raises(ConfigError, match=r"field 'Name' \(file_list\) renders 'ABC_DEFGHI' .* does not hold its target"):
        plan(drop)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey={**labkey_section, "container": "Nowhere"}))
    with pytest.raises(ConfigError, match="No such project: /Nowhere"):
        plan(drop)
    labkey_env.stop()
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey_section))
    with pytest.raises(RefusedError, match="LabKey is unreachable after 2 attempts"):
        plan(drop)


def test_nothing_to_record_asks_labkey_nothing(tmp_path: Path, labkey_env: LabKeyTestServer,
                                               labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    drop.add_file(fastq_relpath(read=1), md5="wrong")  # stops at checksums, not at planning: still asked
    drop.add_file("notes.txt")
    labkey_env.reset_counters()
    assert plan(drop).entries[0].write_action is WriteAction.CREATE
    assert labkey_env.count("selectRows") == 2
    (drop.path / fastq_relpath(read=1)).unlink()
    labkey_env.reset_counters()
    assert plan(drop).entries == []
    assert labkey_env.count("selectRows") == 0


def copied_results(result: Plan) -> tuple[ChecksumsResult, CopiesResult]:
    """Checksums and copies as the earlier steps record them, every planned file copied."""
    sums = {e.relpath: FileChecksum(digests=Digests(size=e.size, blake3="b3", md5="m5"), sidecar="blake3")
            for e in result.entries if e.goes_ahead}
    copies = {rel: FileCopy(outcome="copied", target=by_file(result)[rel].target, verified_blake3="b3") for rel in sums}
    return (ChecksumsResult(drop=result.drop, plan_id=result.plan_id, files=sums),
            CopiesResult(drop=result.drop, plan_id=result.plan_id, files=copies))


def test_write_back_run_again_for_one_plan_never_inserts_twice(tmp_path: Path, labkey_env: LabKeyTestServer,
                                                               labkey_section: dict[str, Any]) -> None:
    drop = labkey_drop(tmp_path, labkey_section)
    for read in (1, 2, 3):
        drop.add_file(fastq_relpath(read=read))
    planned = plan(drop)
    checksums, copies = copied_results(planned)
    saved: list[LabKeyResult] = []
    table = WritebackTable.open(fast_client(writeback_connection(planned.config)), planned.config)
    labkey_env.drop_next(1, action="insertRows", after_processing=True)  # lands, reply lost,
    single = LabKeyClient(writeback_connection(planned.config), api_key=LABKEY_API_KEY, retry=RetryPolicy(attempts=1))
    once = WritebackTable.open(single, planned.config)  # and no attempt is left to read presence again
    with pytest.raises(RefusedError, match="may or may not have been applied"):
        write_records(planned, checksums, copies, once, lambda r: saved.append(r.model_copy(deep=True)))
    assert saved[-1].plan_id == planned.plan_id and not saved[-1].complete
    assert len(labkey_env.rows(LABKEY_CONTAINER, "exp", "data")) == 3
    # A retry of the step for the same plan (no re-plan): the creates are looked up again first.
    done = write_records(planned, checksums, copies, table, saved.append, previous=saved[-1])
    assert (done.inserted, done.updated, done.unchanged) == (0, 0, 3) and done.complete
    assert labkey_env.count("insertRows") == 1 and len(labkey_env.rows(LABKEY_CONTAINER, "exp", "data")) == 3
    assert sorted(f.row_id for f in done.files.values()) == [1, 2, 3]
    assert rows_problems(planned, copies, done, table) == []
    # The check notices a row that disappeared.
    labkey_env.table(LABKEY_CONTAINER, "exp", "data").delete([{"RowId": 2}])
    assert [p.split(": ", 1)[1] for p in rows_problems(planned, copies, done, table)] == ["row RowId=2 is not in exp.data"]
