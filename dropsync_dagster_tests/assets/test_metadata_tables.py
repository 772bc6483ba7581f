"""What the UI shows on each materialisation: held-file tables, relative paths, rounded units,
check results that fail with the right severity, and the drop's status and lineage."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dropsync_dagster.assets.event_metadata import (
    SHOWN_ROWS,
    check_result,
    drop_state_metadata,
    held_metadata,
    markdown_table,
    mib_per_s,
    plan_metadata,
)
from dropsync_dagster.core.held import HeldFile, held_files
from dropsync_dagster.core.model import Digests, Reason
from dropsync_dagster.core.results import (
    ChecksumsResult,
    CopiesResult,
    FileChecksum,
    FileCopy,
    FileMove,
    FileRecord,
    LabKeyResult,
    OriginalsResult,
)
from dropsync_dagster.core.status.store import DropDoc
from dropsync_dagster.core.status.files import ArchiveRef, FileDoc
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config

READS = {n: fastq_relpath(read=n) for n in (1, 2, 3, 4)}


def four_file_drop(tmp_path: Path) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    for rel in READS.values():
        drop.add_file(rel)
    (drop.path / "notes.txt").write_text("not matched by the filter")
    return drop


def digests(n: int, md5: str | None = None) -> Digests:
    return Digests(size=n, blake3=f"{n:x}" * 64, md5=md5)


def test_held_files_follow_the_run_step_by_step(tmp_path: Path) -> None:
    plan = four_file_drop(tmp_path).plan()
    assert held_files(plan) == []  # the plan holds nothing back
    checksums = ChecksumsResult(drop=plan.drop, plan_id=plan.plan_id, files={
        READS[1]: FileChecksum(digests=digests(1, "a" * 32), sidecar="md5", reason=Reason.MD5_MISMATCH, expected_md5="b" * 32),
        READS[2]: FileChecksum(digests=digests(2), sidecar="blake3"),
        READS[3]: FileChecksum(digests=digests(3), sidecar="blake3"),
        READS[4]: FileChecksum(digests=digests(4), sidecar="blake3"),
    })
    after_checksums = held_files(plan, checksums)
    assert after_checksums == [HeldFile(READS[1], "md5_mismatch", "md5 " + "b" * 8 + "…", "md5 " + "a" * 8 + "…")]
    entry = {e.relpath: e for e in plan.entries}
    copies = CopiesResult(drop=plan.drop, plan_id=plan.plan_id, files={
        READS[2]: FileCopy(outcome="target_conflict", target=entry[READS[2]].target),
        READS[3]: FileCopy(outcome="copied", target=entry[READS[3]].target, verified_blake3="3" * 64),
        READS[4]: FileCopy(outcome="copied", target=entry[READS[4]].target, verified_blake3="4" * 64),
    })
    after_copies = held_files(plan, checksums, copies)
    assert after_copies[1] == HeldFile(READS[2], "target_conflict", f"blake3 {'2' * 8}…", "a different file at the target")
    labkey = LabKeyResult(drop=plan.drop, plan_id=plan.plan_id, configured=True, files={
        READS[3]: FileRecord(action="held", reason=Reason.WRITEBACK_SKIPPED),
        READS[4]: FileRecord(action="inserted", row_id=7),
    })
    assert [h.reason for h in held_files(plan, checksums, copies, labkey)] == ["md5_mismatch", "target_conflict", "writeback_skipped"]
    originals = OriginalsResult(drop=plan.drop, plan_id=plan.plan_id, files={
        READS[4]: FileMove(outcome="exists", reason=Reason.EXISTS),
    })
    final = held_files(plan, checksums, copies, labkey, originals)
    assert [(h.file, h.reason) for h in final] == [
        (READS[1], "md5_mismatch"), (READS[2], "target_conflict"), (READS[3], "writeback_skipped"), (READS[4], "exists")]


def test_held_table_shows_reason_and_digests_and_counts_the_rest() -> None:
    held = [HeldFile(f"f{i:03}.fastq.gz", "md5_mismatch", f"md5 {i:032x}", f"md5 {i + 1:032x}") for i in range(SHOWN_ROWS + 7)]
    metadata = held_metadata(held)
    table = metadata["held_back"].value
    assert metadata["held_files"] == SHOWN_ROWS + 7
    assert table.splitlines()[0] == "| file | reason |"
    assert f"| f000.fastq.gz | md5_mismatch: expected md5 {0:032x}, actual md5 {1:032x} |" in table
    assert f"f{SHOWN_ROWS:03}" not in table and "_7 more rows in the JSON result_" in table
    plain = held_metadata([HeldFile("a.fastq.gz", "metadata_missing")])["held_back"].value
    assert "| a.fastq.gz | metadata_missing |" in plain  # no digests where none tell why
    assert held_metadata([])["held_files"] == 0


def test_checks_fail_with_error_for_problems_and_warn_for_held_files() -> None:
    ok = check_result("c", [], drop="seq-a")
    assert ok.passed and ok.metadata["drop"].value == "seq-a"
    warned = check_result("c", [], ["f.fastq.gz: held back (md5_mismatch)"])
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "f.fastq.gz: held back (md5_mismatch)" in warned.metadata["problems"].value
    failed = check_result("c", ["x: moved but still in the drop"], ["f: held back"])
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "x: moved" in failed.metadata["problems"].value


def test_paths_are_relative_and_units_rounded(tmp_path: Path) -> None:
    plan = four_file_drop(tmp_path).plan()
    metadata = plan_metadata(plan)
    assert str(plan.processed_folder) not in metadata["move_plan"].value
    assert f"- {READS[1]} → {READS[1]} · would_move" in metadata["move_plan"].value
    assert str(plan.repository_folder) not in metadata["copy_plan"].value
    assert mib_per_s(3 * 2**20, 2.0) == 1.5 and mib_per_s(36_172_000, 1.0) == 34.5


def test_drop_state_shows_status_owner_and_lineage(tmp_path: Path) -> None:
    plan = four_file_drop(tmp_path).plan()
    entry = {e.relpath: e for e in plan.entries}
    doc = DropDoc(_id=plan.drop, status="synced", owner="0f1e2d3c-aaaa-bbbb-cccc-000000000000", failure_count=0,
                  counts={"moved": 1, "held:md5_mismatch": 1})
    lineage = [
        FileDoc(relpath=READS[1], target=entry[READS[1]].target, processed=entry[READS[1]].processed,
                archive=ArchiveRef(path="/a/x.g2.tar.gpg", generation=2), labkey_row_id=41),
        FileDoc(relpath=READS[2], held_reason="md5_mismatch"),
    ]
    metadata = drop_state_metadata(doc, plan, lineage)
    assert metadata["drop_status"] == "synced" and metadata["failure_count"] == 0
    assert isinstance(metadata["owner_run"], dg.DagsterRunMetadataValue)
    listed = metadata["lineage"].value
    target = entry[READS[1]].target_relpath
    assert f"- {READS[1]} → {target} · archive g2 · LabKey row 41 · original moved" in listed
    assert f"- {READS[2]} → not copied · original in the drop (md5_mismatch)" in listed
    assert str(plan.repository_folder) not in listed
    assert "| held:md5_mismatch | 1 |" in metadata["status_counts"].value
    assert f"dropsync status {plan.drop}" in metadata["lineage_command"].value


def test_markdown_table_escapes_pipes() -> None:
    assert "a\\|b" in markdown_table([{"file": "a|b"}]).value


def test_every_check_says_what_it_proves_and_is_evaluated_per_drop() -> None:
    from dropsync_dagster.definitions import defs
    from dropsync_dagster.partitions import drops

    specs = [spec for asset in defs.assets if asset.partitions_def == drops for spec in asset.check_specs]  # drop assets
    assert {s.name for s in specs} == {"targets_unique_and_inside_repository", "copies_match_source_digests",
                                       "archive_matches_checksums", "labkey_rows_present", "originals_accounted_for"}
    for spec in specs:
        assert spec.partitions_def == drops, spec.name
        assert spec.description.startswith("Proves") and "fails" in spec.description.lower(), spec.name  # and what to do
        assert spec.description.endswith("(metadata `drop`)."), spec.name
