"""`dropsync verify` as a subprocess: rot and loss in repository copies and archives are named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.stewardship import decryption
from dropsync_dagster.core.stewardship.verify import audit_drop
from dropsync_dagster.deployment import deployment_from_env
from dropsync_dagster_tests.stewardship.synced import dropsync, flip_bit, sync
from dropsync_dagster_tests.support.drops import fastq_relpath


def test_clean_drop_passes_and_records_verified_at(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    done = dropsync(synced, "verify", synced.drop.key, "--archives")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 repository copies re-read, archive generations 1" in done.stdout
    doc = json.loads(dropsync(synced, "lineage", str(synced.target(1))).stdout)
    assert doc["verified_at"]
    assert doc["fixity"]["repository"]["outcome"] == "match"
    assert doc["fixity"]["archive"]["outcome"] == "match"


def test_flipped_bit_and_missing_copy_are_each_named(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    flip_bit(synced.target(2), 1000)
    done = dropsync(synced, "verify", str(synced.drop.path))
    assert done.returncode == 1, done.stderr
    assert f"DIFFERS {synced.drop.key}: {fastq_relpath(read=2)}" in done.stdout
    synced.target(1).unlink()
    done = dropsync(synced, "verify", "--all")
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("DIFFERS", "MISSING"))]
    assert len(lines) == 2
    assert f"MISSING {synced.drop.key}: {fastq_relpath(read=1)} (repository {synced.target(1)})" in done.stdout
    doc = json.loads(dropsync(synced, "lineage", str(synced.drop.processed / fastq_relpath(read=2))).stdout)
    assert doc["fixity"]["repository"]["outcome"] == "differs"


def test_flipped_bit_in_an_archive_is_found_only_with_archives(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    archive = synced.archive(1)
    flip_bit(archive, archive.stat().st_size // 2)
    assert dropsync(synced, "verify", synced.drop.key).returncode == 0  # the repository is intact
    done = dropsync(synced, "verify", synced.drop.key, "--archives")
    assert done.returncode == 1, done.stderr
    assert f"DAMAGED {synced.drop.key}: g1 (archive {archive})" in done.stdout
    assert "manipulated" in done.stdout
    assert f"DIFFERS {synced.drop.key}: {fastq_relpath(read=2)} (archive {archive})" in done.stdout


def test_sample_rereads_the_least_recently_verified_first(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance, generations=2)
    first = dropsync(synced, "verify", synced.drop.key, "--sample", "0.5", "--seed", "7")
    assert first.returncode == 0 and "2 of 3 repository copies re-read" in first.stdout, first.stdout
    store = deployment_from_env(synced.drop.env()).status_store()
    never = [d.relpath for d in store.drop_files(synced.drop.key) if d.target and d.verified_at is None]
    assert len(never) == 1
    dropsync(synced, "verify", synced.drop.key, "--sample", "0.3", "--seed", "7")
    assert store.get_file(f"{synced.drop.key}:{never[0]}").verified_at is not None


def test_bad_sample_is_a_config_error_and_no_drop_a_usage_error(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    done = dropsync(synced, "verify", synced.drop.key, "--sample", "1.5")
    assert done.returncode == 2 and "--sample" in done.stderr and len(done.stderr.splitlines()) == 1
    assert dropsync(synced, "verify").returncode == 2
    unknown = dropsync(synced, "verify", "seq-never_synced")
    assert unknown.returncode == 2 and "seq-never_synced: no status document" in unknown.stderr


def test_reads_bypass_the_page_cache(tmp_path: Path, gpg_keys, monkeypatch) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    calls: list[tuple[str, int]] = []
    real_fadvise, real_preadv = os.posix_fadvise, os.preadv

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), advice))
        real_fadvise(fd, offset, length, advice)

    def preadv(fd: int, buffers, offset: int) -> int:
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), -1))  # -1: a read
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(decryption.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(os, "preadv", preadv)
    store = deployment_from_env(synced.drop.env()).status_store()
    assert not audit_drop(store, synced.drop.key).findings
    target = str(synced.target(1))
    mine = [advice for path, advice in calls if path == target]
    # Dropped before the first read (from the disk) and after the last (the audit leaves no cache).
    assert mine[0] == os.POSIX_FADV_DONTNEED and mine[-1] == os.POSIX_FADV_DONTNEED and -1 in mine
