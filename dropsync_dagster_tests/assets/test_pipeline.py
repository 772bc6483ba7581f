"""The drop's assets end to end through dg.materialize on a real (temporary) instance."""

import blake3
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.definitions import defs
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster_tests.drops import Drop, fastq_relpath, make_drop, seed_config

ASSETS = ["drop_manifest", "drop_checksums", "repository_copies", "archived_originals"]


def plain_drop(tmp_path: Path) -> Drop:
    """A seed-config drop without LabKey: a good .md5 file, a bad .md5 file, one without sidecar."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2), md5="wrong")
    drop.add_file(fastq_relpath(read=3))
    drop.mark_ready()
    return drop


def materialize(drop: Drop, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("drops", [drop.key])
    env = drop.env()
    storage = StorageResource(
        state_dir=env["DROPSYNC_STATE_DIR"],
        allowed_roots=env["DROPSYNC_ALLOWED_ROOTS"],
        drop_roots=env["DROPSYNC_DROP_ROOTS"],
    )
    assets = [defs.get_assets_def(name) for name in ASSETS]
    return dg.materialize(assets, partition_key=drop.key, instance=instance, resources={"storage": storage})


def test_drop_syncs_and_holds_back_the_md5_mismatch(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialize(drop, instance)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    repo = drop.repository / "scRNA/raw/btki/ABC_DEFGHI"
    synced = sorted(p.name for p in repo.iterdir())
    assert synced == [
        "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz.md5",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz",
        "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz.blake3",
    ]
    assert subprocess.run(["md5sum", "-c", "ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz.md5"], cwd=repo).returncode == 0
    line = (repo / "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz.blake3").read_text()
    data = (repo / "ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz").read_bytes()
    assert line == f"{blake3.blake3(data).hexdigest()}  ABC_DEFGHI_SEQ_ABCDE_r1__R3_001.fastq.gz\n"
    # The mismatched file stays in the drop; the other originals (with sidecars) are processed.
    assert (drop.path / fastq_relpath(read=2)).exists()
    assert not (drop.path / fastq_relpath(read=1)).exists()
    assert (drop.processed / fastq_relpath(read=1)).exists()
    assert (drop.processed / (fastq_relpath(read=1) + ".md5")).exists()
    assert (drop.processed / (fastq_relpath(read=3) + ".blake3")).exists()
    assert checks == {
        "targets_unique_and_inside_repository": True,
        "copies_match_source_digests": True,
        "originals_accounted_for": True,
    }


def test_rerun_is_idempotent(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        assert materialize(drop, instance).success
        before = {p: p.stat().st_mtime_ns for p in drop.repository.rglob("*")}
        assert materialize(drop, instance).success
    after = {p: p.stat().st_mtime_ns for p in drop.repository.rglob("*")}
    assert before == after
    assert (drop.path / fastq_relpath(read=2)).exists()


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
