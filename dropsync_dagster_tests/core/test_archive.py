"""Encrypted archives against the real gpg and tar binaries, with throwaway keys."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from blake3 import blake3

from dropsync_dagster.core.archive.generations import (
    archived_members,
    excluding_pattern,
    list_generations,
    select_members,
    write_archive,
)
from dropsync_dagster.core.errors import ConfigError, DropsyncError, IntegrityError
from dropsync_dagster.core.archive.gpg import rewrap_key, unwrap_key
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys, gpg_cmd

DROP = "root-run_001"
PLANNED = ("data/a.fastq.gz", "data/lane2/b.fastq.gz")


def b3(path: Path) -> str:
    return blake3(path.read_bytes()).hexdigest()


@pytest.fixture
def drop_dir(tmp_path: Path) -> Path:
    """A drop as received: planned files, a sidecar, sync.yml, an unplanned file and a symlink."""
    drop = tmp_path / "run_001"
    (drop / "data" / "lane2").mkdir(parents=True)
    (drop / "data" / "a.fastq.gz").write_bytes(os.urandom(300_000))
    (drop / "data" / "lane2" / "b.fastq.gz").write_bytes(os.urandom(70_001))
    (drop / "data" / "a.fastq.gz.md5").write_text("d41d8cd98f00b204e9800998ecf8427e  a.fastq.gz\n")
    (drop / "sync.yml").write_text("drop_filename_filter: '**/*.fastq.gz'\n")
    (drop / "Demultiplex_1").mkdir()
    (drop / "Demultiplex_1" / "stats.json").write_text("{}\n")
    (drop / "outside-link").symlink_to(tmp_path)
    return drop


def expected_of(drop: Path, planned: tuple[str, ...] = PLANNED) -> dict[str, str]:
    return {rel: b3(drop / rel) for rel in planned}


def archive(drop: Path, tmp_path: Path, keys: GpgKeys, recipients: list[str] | None = None, **kw):
    members = select_members(drop, kw.pop("exclusions", []), set(PLANNED))
    return write_archive(
        drop, DROP, members, kw.pop("expected", None) or expected_of(drop), tmp_path / "archives",
        tmp_path / "keys", recipients or list(keys.recipients), keys.home, **kw,
    )


def symmetric_decrypt(home: str, archive: Path, passphrase: str) -> subprocess.CompletedProcess:
    """`gpg --decrypt` as a person would run it, the passphrase on stdin (fd 0)."""
    return subprocess.run(
        ["gpg", "--batch", "--homedir", home, "--pinentry-mode", "loopback", "--no-symkey-cache",
         "--passphrase-fd", "0", "--decrypt", str(archive)],
        input=passphrase.encode(), capture_output=True,
    )


def names_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_round_trip_records_members_generation_and_recipients(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    result = archive(drop_dir, tmp_path, gpg_keys)

    everything = [
        "Demultiplex_1/stats.json", "data/a.fastq.gz", "data/a.fastq.gz.md5", "data/lane2/b.fastq.gz", "sync.yml"
    ]
    assert (result.generation, result.members, result.member_count) == (1, everything, 5)
    assert result.archive_path == str(tmp_path / "archives" / f"{DROP}.g1.tar.gpg")
    assert result.key_path == str(tmp_path / "keys" / f"{DROP}.g1.key.gpg")
    assert result.archive_size == Path(result.archive_path).stat().st_size > result.bytes_written > 370_000
    assert result.recipient_fingerprints == [gpg_keys.fingerprints[r] for r in gpg_keys.recipients]
    assert result.encrypt_seconds > 0 and result.validate_seconds > 0
    assert archived_members(tmp_path / "archives", DROP) == {rel: b3(drop_dir / rel) for rel in everything}
    index = json.loads(Path(result.index_path).read_text())
    assert index["members"]["data/lane2/b.fastq.gz"]["size"] == 70_001
    assert names_in(tmp_path / "archives") == [f"{DROP}.g1.members.json", f"{DROP}.g1.tar.gpg"]
    assert names_in(tmp_path / "keys") == [f"{DROP}.g1.key.gpg"]

    again = archive(drop_dir, tmp_path, gpg_keys)
    assert again.nothing_to_archive and again.generation is None
    assert len(list_generations(tmp_path / "archives", DROP)) == 1


def test_standard_gpg_and_tar_restore_the_drop_byte_for_byte(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    long_name = drop_dir / "deep" / ("x" * 70) / ("y" * 70) / "résumé des données.txt"  # pax headers
    long_name.parent.mkdir(parents=True)
    long_name.write_bytes(os.urandom(1000))
    result = archive(drop_dir, tmp_path, gpg_keys)
    assert str(long_name.relative_to(drop_dir)) in result.members

    passphrase = gpg_cmd(gpg_keys.home, "--quiet", "--decrypt", result.key_path).decode()
    assert len(passphrase) == 64 and all(c in "0123456789abcdef" for c in passphrase)
    restored = tmp_path / "restored"
    restored.mkdir()
    decrypt = subprocess.Popen(
        ["gpg", "--batch", "--quiet", "--homedir", gpg_keys.home, "--pinentry-mode", "loopback", "--no-symkey-cache",
         "--passphrase-fd", "0", "--decrypt", result.archive_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    untar = subprocess.Popen(["tar", "-x", "-C", str(restored)], stdin=decrypt.stdout)
    decrypt.stdout.close()
    decrypt.stdin.write(passphrase.encode())
    decrypt.stdin.close()
    assert untar.wait(30) == 0 and decrypt.wait(30) == 0

    for rel in result.members:
        assert filecmp.cmp(drop_dir / rel, restored / rel, shallow=False), rel
    restored_files = sorted(str(p.relative_to(restored)) for p in restored.rglob("*") if p.is_file())
    assert restored_files == result.members  # the symlink was not followed, nor stored


def test_archive_key_derivation_is_not_stretched_and_stays_aes256_without_compression(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    """The passphrase is 256 random bits: the archive says iterated+salted S2K with the smallest
    count gpg honours (the agent's default costs ~0.1-0.3 s per encrypt and per decrypt)."""
    result = archive(drop_dir, tmp_path, gpg_keys)
    passphrase = gpg_cmd(gpg_keys.home, "--quiet", "--decrypt", result.key_path).decode()
    packets = subprocess.run(
        ["gpg", "--batch", "--homedir", gpg_keys.home, "--pinentry-mode", "loopback", "--no-symkey-cache",
         "--passphrase-fd", "0", "--list-packets", result.archive_path],
        input=passphrase.encode(), capture_output=True, check=True,
    ).stdout.decode()
    symkey = next(line for line in packets.splitlines() if line.startswith(":symkey enc packet:"))
    assert "cipher 9," in symkey and "s2k 3," in symkey and "hash 8" in symkey  # AES256, iterated+salted, SHA256
    assert "count 65536 " in packets
    assert ":compressed packet:" not in packets  # --compress-algo none
    assert symmetric_decrypt(gpg_keys.home, Path(result.archive_path), passphrase).returncode == 0


def test_key_with_newline_byte_works_and_every_hex_digit_matters(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    raw = bytes(range(32))
    assert b"\n" in raw  # a raw passphrase would be cut here by gpg
    result = archive(drop_dir, tmp_path, gpg_keys, new_key=lambda: raw)

    passphrase = unwrap_key(Path(result.key_path), gpg_keys.home)
    assert passphrase == raw.hex()
    assert symmetric_decrypt(gpg_keys.home, Path(result.archive_path), passphrase[:32]).returncode != 0
    assert symmetric_decrypt(gpg_keys.home, Path(result.archive_path), passphrase[:-1]).returncode != 0
    full = symmetric_decrypt(gpg_keys.home, Path(result.archive_path), passphrase)
    assert full.returncode == 0 and len(full.stdout) > result.bytes_written


def test_new_files_go_to_a_new_generation_and_earlier_ones_stay_untouched(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    first = archive(drop_dir, tmp_path, gpg_keys)
    g1 = Path(first.archive_path)
    g1_state = (hashlib.sha256(g1.read_bytes()).hexdigest(), g1.stat().st_mtime_ns)

    (drop_dir / "data" / "c.fastq.gz").write_bytes(os.urandom(5000))
    second = archive(drop_dir, tmp_path, gpg_keys)
    assert (second.generation, second.members) == (2, ["data/c.fastq.gz"])

    (drop_dir / "Demultiplex_1" / "stats.json").write_text('{"reads": 12}\n')  # unplanned, changed
    third = archive(drop_dir, tmp_path, gpg_keys)
    assert (third.generation, third.members) == (3, ["Demultiplex_1/stats.json"])

    assert (hashlib.sha256(g1.read_bytes()).hexdigest(), g1.stat().st_mtime_ns) == g1_state
    assert [g.generation for g in list_generations(tmp_path / "archives", DROP)] == [1, 2, 3]
    assert archived_members(tmp_path / "archives", DROP)["Demultiplex_1/stats.json"] == b3(
        drop_dir / "Demultiplex_1" / "stats.json"
    )


def test_tar_exclusions_follow_tar_and_may_not_exclude_a_planned_file(drop_dir: Path):
    assert excluding_pattern("Demultiplex_1/stats.json", ["Demultiplex*"]) == "Demultiplex*"
    assert excluding_pattern("data/lane2/b.fastq.gz", ["lane2"]) == "lane2"
    assert excluding_pattern("data/a.fastq.gz", ["*.md5", "a.fastq"]) is None
    members = select_members(drop_dir, ["Demultiplex*", "*.md5"], set(PLANNED))
    assert members == ["data/a.fastq.gz", "data/lane2/b.fastq.gz", "sync.yml"]

    with pytest.raises(ConfigError, match=r"'data/lane\*' excludes planned file data/lane2/b.fastq.gz"):
        select_members(drop_dir, ["data/lane*"], set(PLANNED))


def test_a_planned_symlink_inside_the_drop_is_checked_through_its_target(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    (drop_dir / "data" / "alias.fastq.gz").symlink_to("a.fastq.gz")
    expected = expected_of(drop_dir) | {"data/alias.fastq.gz": b3(drop_dir / "data" / "a.fastq.gz")}
    result = archive(drop_dir, tmp_path, gpg_keys, expected=expected)
    assert "data/alias.fastq.gz" not in result.members and "data/a.fastq.gz" in result.members

    (drop_dir / "data" / "escape.fastq.gz").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="data/escape.fastq.gz is not a regular file"):
        archive(drop_dir, tmp_path, gpg_keys, expected=expected | {"data/escape.fastq.gz": "0" * 64})


def test_missing_recipient_is_a_config_error_before_anything_is_written(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    with pytest.raises(ConfigError, match="carol@dropsync.test"):
        archive(drop_dir, tmp_path, gpg_keys, recipients=[gpg_keys.recipients[0], "carol@dropsync.test"])
    assert not (tmp_path / "archives").exists() and not (tmp_path / "keys").exists()


def test_content_differing_from_its_checksum_publishes_nothing(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    expected = expected_of(drop_dir) | {"data/a.fastq.gz": "0" * 64}
    with pytest.raises(IntegrityError, match="data/a.fastq.gz"):
        archive(drop_dir, tmp_path, gpg_keys, expected=expected)
    assert names_in(tmp_path / "archives") == [] and names_in(tmp_path / "keys") == []


def test_a_file_changing_while_it_is_read_publishes_nothing(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    # Demultiplex_1/stats.json is first in tar order: rewrite it while its bytes stream out.
    victim = drop_dir / "Demultiplex_1" / "stats.json"
    victim.write_bytes(os.urandom(3 * 1024 * 1024))
    os.utime(victim, ns=(0, 0))

    def touch_victim(_n: int) -> None:
        os.utime(victim)

    with pytest.raises(IntegrityError, match="changed while being archived"):
        archive(drop_dir, tmp_path, gpg_keys, on_bytes=touch_victim)
    assert names_in(tmp_path / "archives") == [] and names_in(tmp_path / "keys") == []


_ARCHIVE_IN_CHILD = """
import json, sys, time
from pathlib import Path
from dropsync_dagster.core.archive.generations import select_members, write_archive
args = json.loads(sys.argv[1])
drop = Path(args["drop"])
def stall(_n):
    print("streaming", flush=True)
    time.sleep(60)
members = select_members(drop, [], set(args["expected"]))
try:
    write_archive(drop, args["key"], members, args["expected"], Path(args["archives"]), Path(args["keys"]),
                  args["recipients"], args["home"], stall if args["stall"] else None)
    print(json.dumps({"error": None}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc), "left": sorted(
        p.name for p in Path(args["archives"]).iterdir())}))
"""


def child_args(drop: Path, tmp_path: Path, keys: GpgKeys, stall: bool) -> str:
    return json.dumps({
        "drop": str(drop), "key": DROP, "expected": expected_of(drop), "archives": str(tmp_path / "archives"),
        "keys": str(tmp_path / "keys"), "recipients": list(keys.recipients), "home": keys.home, "stall": stall,
    })


def test_killed_mid_archive_leaves_no_final_file_and_a_rerun_succeeds(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    child = subprocess.Popen(
        [sys.executable, "-c", _ARCHIVE_IN_CHILD, child_args(drop_dir, tmp_path, gpg_keys, stall=True)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "streaming"
    helpers = [p for p in psutil.Process(child.pid).children(recursive=True) if p.name() == "gpg"]
    assert len(helpers) == 2  # encrypting and, alongside, validating
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    psutil.wait_procs(helpers, timeout=10)  # gpg notices the closed pipe and exits by itself

    left = names_in(tmp_path / "archives") + names_in(tmp_path / "keys")
    assert left and all(".dropsync-tmp" in name for name in left)  # only temporaries
    result = archive(drop_dir, tmp_path, gpg_keys)
    assert result.generation == 1
    assert names_in(tmp_path / "archives") == [f"{DROP}.g1.members.json", f"{DROP}.g1.tar.gpg"]
    assert names_in(tmp_path / "keys") == [f"{DROP}.g1.key.gpg"]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a private small tmpfs")
def test_full_disk_is_a_clear_error_and_leaves_nothing(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    (drop_dir / "data" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    before = {rel: b3(drop_dir / rel) for rel in select_members(drop_dir, [], set())}
    (tmp_path / "archives").mkdir()
    # A 1 MiB tmpfs over the archive folder, private to the child's own mount namespace.
    shell = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$1" -c "$2" "$3"'
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell, str(tmp_path / "archives"), sys.executable, _ARCHIVE_IN_CHILD,
         child_args(drop_dir, tmp_path, gpg_keys, stall=False)],
        capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0 and "mount" in proc.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {proc.stderr.strip()}")
    outcome = json.loads(proc.stdout.splitlines()[-1])
    assert outcome["error"] == "DropsyncError", outcome
    assert outcome["message"].startswith(f"disk full writing {DROP}: {tmp_path / 'archives'}"), outcome
    assert outcome["left"] == []
    assert names_in(tmp_path / "keys") == []
    assert {rel: b3(drop_dir / rel) for rel in before} == before


def test_rewrap_gives_the_key_to_a_new_recipient_without_touching_the_archive(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    alice, bob = gpg_keys.recipients
    result = archive(drop_dir, tmp_path, gpg_keys, recipients=[alice])
    key, archive_file = Path(result.key_path), Path(result.archive_path)
    archive_state = (hashlib.sha256(archive_file.read_bytes()).hexdigest(), archive_file.stat().st_mtime_ns)
    passphrase = unwrap_key(key, gpg_keys.single_homes[alice])
    with pytest.raises(DropsyncError):
        unwrap_key(key, gpg_keys.single_homes[bob])

    assert rewrap_key(key, [bob], gpg_keys.home) == [gpg_keys.fingerprints[bob]]

    assert unwrap_key(key, gpg_keys.single_homes[bob]) == passphrase
    with pytest.raises(DropsyncError):
        unwrap_key(key, gpg_keys.single_homes[alice])
    assert (hashlib.sha256(archive_file.read_bytes()).hexdigest(), archive_file.stat().st_mtime_ns) == archive_state
    assert names_in(tmp_path / "keys") == [key.name]
    assert symmetric_decrypt(gpg_keys.home, archive_file, passphrase).returncode == 0


def test_archive_and_key_files_are_private_and_published_through_their_folders(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    result = archive(drop_dir, tmp_path, gpg_keys)
    for folder in (tmp_path / "archives", tmp_path / "keys"):
        assert folder.stat().st_mode & 0o777 == 0o700
    for path in (result.archive_path, result.key_path, result.index_path):
        assert Path(path).stat().st_mode & 0o777 == 0o600
    alice, _ = gpg_keys.recipients
    assert rewrap_key(Path(result.key_path), [alice], gpg_keys.home)
    assert Path(result.key_path).stat().st_mode & 0o777 == 0o600


def test_archive_hooks_fire_while_encrypting_and_once_published(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    from dropsync_dagster.core import testhooks

    seen: list[tuple[str, object]] = []
    testhooks.install("archive_encrypting", lambda drop: seen.append(("encrypting", drop)))
    testhooks.install(
        "archive_published", lambda path: seen.append(("published", Path(path).exists()))
    )
    try:
        result = archive(drop_dir, tmp_path, gpg_keys)
    finally:
        testhooks.clear()
    assert seen == [("encrypting", DROP), ("published", True)]
    assert result.generation == 1


def test_a_lost_claim_publishes_no_archive_file(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    from dropsync_dagster.core.errors import RefusedError

    def lost() -> None:
        raise RefusedError("claim lost")

    with pytest.raises(RefusedError):
        archive(drop_dir, tmp_path, gpg_keys, guard=lost)
    assert names_in(tmp_path / "archives") == [] and names_in(tmp_path / "keys") == []


def test_a_link_planted_at_a_final_archive_name_is_never_written_through(
    drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys
):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / f".{DROP}.g1.tar.gpg.dropsync-tmp").symlink_to(outside)
    os.link(outside, tmp_path / "archives" / f".{DROP}.g1.members.json.dropsync-tmp")
    result = archive(drop_dir, tmp_path, gpg_keys)
    assert result.generation == 1
    assert outside.read_bytes() == b"keep" and outside.stat().st_nlink == 1


def test_a_rerun_with_nothing_new_still_sweeps_dead_temporaries(drop_dir: Path, tmp_path: Path, gpg_keys: GpgKeys):
    result = archive(drop_dir, tmp_path, gpg_keys)
    published = Path(result.archive_path)
    # Killed between publishing and unlinking: the temporary is the archive's second name.
    stale = published.with_name(f".{published.name}.dropsync-tmp-deadbeef-0000")
    os.link(published, stale)
    assert archive(drop_dir, tmp_path, gpg_keys).nothing_to_archive
    assert not stale.exists() and published.stat().st_nlink == 1
