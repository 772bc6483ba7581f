"""encrypted_archive in the drop job: real gpg, restore with standard tools, gating of originals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg

from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config


def archived_drop(tmp_path: Path, **archive) -> Drop:
    drop = make_drop(tmp_path)
    config = seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None)
    if archive:
        config["archive"] = archive
    drop.write_config(config)
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2))
    drop.add_file("SampleSheet.csv", b"Sample_ID\nS1\n")  # not planned, but part of the drop as received
    drop.mark_ready()
    return drop


def gpg_resource(gpg_keys, tmp_path: Path, **extra: object) -> GpgResource:
    return GpgResource(
        gnupghome=gpg_keys.home, recipients=list(gpg_keys.recipients),
        archive_dir=str(tmp_path / "archive"), key_dir=str(tmp_path / "keys"), **extra,
    )


def test_archive_restores_byte_for_byte_with_gpg_and_tar(tmp_path: Path, gpg_keys) -> None:
    drop = archived_drop(tmp_path)
    originals = {p.relative_to(drop.path).as_posix(): p.read_bytes() for p in drop.path.rglob("*") if p.is_file()}
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, gpg=gpg_resource(gpg_keys, tmp_path))
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["archive_matches_checksums"] is True
    archive = tmp_path / "archive" / f"{drop.key}.g1.tar.gpg"
    key = tmp_path / "keys" / f"{drop.key}.g1.key.gpg"
    home = gpg_keys.single_homes[gpg_keys.recipients[1]]  # only bob's secret key
    passphrase = subprocess.run(["gpg", "--batch", "--homedir", home, "--decrypt", str(key)], capture_output=True, check=True).stdout
    assert len(passphrase) == 64 and not passphrase.endswith(b"\n")
    restored = tmp_path / "restored"
    restored.mkdir()
    gpg = subprocess.Popen(
        ["gpg", "--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt", str(archive)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    tar = subprocess.Popen(["tar", "-x", "-C", str(restored)], stdin=gpg.stdout)
    gpg.stdin.write(passphrase)
    gpg.stdin.close()
    gpg.stdout.close()
    assert tar.wait() == 0 and gpg.wait() == 0
    got = {p.relative_to(restored).as_posix(): p.read_bytes() for p in restored.rglob("*") if p.is_file()}
    for rel, data in originals.items():
        assert got[rel] == data, rel  # every file as received, incl. sidecars and sync.yml
    assert fastq_relpath(read=2) + ".blake3" in got  # the sidecar the checksum step wrote
    assert (drop.processed / fastq_relpath(read=1)).exists()


def test_required_archive_overrides_sync_yml_and_new_files_make_a_new_generation(tmp_path: Path, gpg_keys) -> None:
    drop = archived_drop(tmp_path, enabled=False)
    gpg = gpg_resource(gpg_keys, tmp_path)  # recipients set: the requirement defaults to on
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, gpg=gpg).success
        g1 = (tmp_path / "archive" / f"{drop.key}.g1.tar.gpg").read_bytes()
        drop.add_file(fastq_relpath(read=3))
        assert run_job(drop, instance, gpg=gpg).success
    g2 = json.loads((tmp_path / "archive" / f"{drop.key}.g2.members.json").read_text())
    assert sorted(g2["members"]) == [fastq_relpath(read=3), fastq_relpath(read=3) + ".blake3"]
    assert (tmp_path / "archive" / f"{drop.key}.g1.tar.gpg").read_bytes() == g1
    assert (drop.processed / fastq_relpath(read=3)).exists()


def test_disabled_archive_materialises_and_says_why(tmp_path: Path) -> None:
    drop = archived_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
        assert result.success
        metadata = result.asset_materializations_for_node("encrypted_archive")[0].metadata
    assert metadata["enabled"].value is False
    assert "DROPSYNC_GPG_RECIPIENTS" in metadata["why"].value
    assert (drop.processed / fastq_relpath(read=1)).exists()


def test_missing_recipient_stops_before_any_file_is_touched(tmp_path: Path, gpg_keys) -> None:
    drop = archived_drop(tmp_path)
    gpg = GpgResource(gnupghome=gpg_keys.home, recipients=["nobody@dropsync.test"], archive_dir=str(tmp_path / "archive"))
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, gpg=gpg)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "drop_manifest"
    assert "nobody@dropsync.test" in str(failure.step_failure_data.error.message) or "nobody@dropsync.test" in str(failure.step_failure_data.error.cause)
    assert not (drop.path / (fastq_relpath(read=2) + ".blake3")).exists()
    assert not any(drop.repository.iterdir())


def test_keys_rewrap_hands_the_key_to_a_new_owner(tmp_path: Path, gpg_keys) -> None:
    import os
    import sys

    drop = archived_drop(tmp_path)
    alice, bob = gpg_keys.recipients
    gpg = GpgResource(gnupghome=gpg_keys.home, recipients=[alice], archive_dir=str(tmp_path / "archive"), key_dir=str(tmp_path / "keys"))
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, gpg=gpg).success
    archive = tmp_path / "archive" / f"{drop.key}.g1.tar.gpg"
    key = tmp_path / "keys" / f"{drop.key}.g1.key.gpg"
    before = (archive.read_bytes(), archive.stat().st_mtime_ns)
    bob_home = gpg_keys.single_homes[bob]
    assert subprocess.run(["gpg", "--batch", "--homedir", bob_home, "--decrypt", str(key)], capture_output=True).returncode != 0
    env = {**os.environ, **drop.env(), "GNUPGHOME": gpg_keys.home, "DROPSYNC_ARCHIVE_DIR": str(tmp_path / "archive")}
    done = subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", "keys", "rewrap", drop.key, "--to", bob], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(subprocess.run(["gpg", "--batch", "--homedir", bob_home, "--decrypt", str(key)], capture_output=True, check=True).stdout) == 64
    assert (archive.read_bytes(), archive.stat().st_mtime_ns) == before
