"""The drop job end to end on a real (temporary) instance: copies, sidecars, checks, moves."""

from pathlib import Path

import hashlib

import blake3
import dagster as dg
import subprocess

from dropsync_dagster.definitions import defs
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config


def plain_drop(tmp_path: Path) -> Drop:
    """A seed-config drop without LabKey: a good .md5 file, a bad .md5 file, one without sidecar."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2), md5="wrong")
    drop.add_file(fastq_relpath(read=3))
    drop.mark_ready()
    return drop


def check_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def test_drop_syncs_and_holds_back_the_md5_mismatch(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
        assert result.success
        checks = check_outcomes(result)
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        held_tables = {a: metadata_of(result, a) for a in (
            "drop_checksums", "repository_copies", "labkey_records", "archived_originals")}
        final = metadata_of(result, "archived_originals")
    repo = drop.repository / "scRNA/raw/btki/ABC_DEFGHI"
    assert sorted(p.name for p in repo.iterdir()) == [
        "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz.md5",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz.blake3",
    ]
    assert subprocess.run(["md5sum", "-c", "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz.md5"], cwd=repo).returncode == 0
    data = (repo / "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz").read_bytes()
    line = (repo / "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz.blake3").read_text()
    assert line == f"{blake3.blake3(data).hexdigest()}  ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz\n"
    # The mismatched file stays in the drop; the other originals (with sidecars) are processed.
    assert (drop.path / fastq_relpath(read=2)).exists()
    assert not (drop.path / fastq_relpath(read=1)).exists()
    assert (drop.processed / fastq_relpath(read=1)).exists()
    assert (drop.processed / (fastq_relpath(read=1) + ".md5")).exists()
    assert (drop.processed / (fastq_relpath(read=3) + ".blake3")).exists()
    # A drop with a held file is not all green: the originals check fails with WARN, naming it.
    held = fastq_relpath(read=2)
    assert checks.pop("originals_accounted_for") is False
    warning = evaluations["originals_accounted_for"]
    assert warning.severity == dg.AssetCheckSeverity.WARN and held in warning.metadata["problems"].value
    assert all(checks.values()), checks
    assert {"targets_unique_and_inside_repository", "copies_match_source_digests", "archive_matches_checksums"} <= set(checks)
    # Every result is recorded against the drop's partition, and names it.
    assert {e.partition for e in evaluations.values()} == {drop.key}
    assert {e.metadata["drop"].value for e in evaluations.values()} == {drop.key}
    # Every step from the checksums on shows the held file, its reason and both digests.
    for asset, metadata in held_tables.items():
        assert metadata["held_files"] == 1, asset
        data = (drop.path / held).read_bytes()
        expected, actual = hashlib.md5(data + b"corrupt").hexdigest(), hashlib.md5(data).hexdigest()
        assert f"| {held} | md5_mismatch: expected md5 {expected[:8]}…, actual md5 {actual[:8]}… |" in metadata["held_back"], asset
    # The drop's status document and its files' lineage are on the last step's materialisation.
    assert final["drop_status"] == "synced" and final["failure_count"] == 0
    assert final["owner_run"] == result.run_id
    assert fastq_relpath(read=1) in final["lineage"] and f"{held} → not copied · original in the drop (md5_mismatch)" in final["lineage"]


def test_rerun_is_idempotent(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance).success
        before = {p: p.stat().st_mtime_ns for p in drop.repository.rglob("*")}
        assert run_job(drop, instance).success
    after = {p: p.stat().st_mtime_ns for p in drop.repository.rglob("*")}
    assert before == after
    assert (drop.path / fastq_relpath(read=2)).exists()


def test_manifest_alone_is_a_dry_run(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    before = sorted(p for p in drop.root.parent.rglob("*") if "state" not in p.parts)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("drops", [drop.key])
        from dropsync_dagster_tests.support.dagster_env import definitions_for

        job = definitions_for(drop).resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            partition_key=drop.key, instance=instance, asset_selection=[dg.AssetKey("drop_manifest")]
        )
        assert result.success
        metadata = result.asset_materializations_for_node("drop_manifest")[0].metadata
    assert metadata["reason/go"].value == 3
    assert "would_copy" in metadata["copy_plan"].value
    after = sorted(p for p in drop.root.parent.rglob("*") if "state" not in p.parts)
    assert before == after


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
