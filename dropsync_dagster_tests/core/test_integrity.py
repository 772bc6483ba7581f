"""Hashing, sidecars, verified copies and moves, on real files, real processes and `md5sum`."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from blake3 import blake3

from dropsync_dagster.core.errors import IntegrityError
from dropsync_dagster.core.integrity.hashing import BUFFER_SIZE, THREADED_HASH_FROM, hash_file, hash_files
from dropsync_dagster.core.integrity.publish import (
    CopyItem,
    CopyOutcome,
    MoveOutcome,
    copy_verified,
    copy_verified_batch,
    move_original,
)
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.integrity.sidecars import (
    TEMP_MARK,
    read_md5_sidecar,
    read_sidecar,
    remove_stale_temps,
    write_sidecar,
)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _payload(size: int, seed: bytes = b"x") -> bytes:
    return blake3(seed).digest(length=size)


def _reference(data: bytes, md5: bool = True) -> Digests:
    return Digests(
        size=len(data), blake3=blake3(data).hexdigest(), md5=hashlib.md5(data).hexdigest() if md5 else None
    )


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARK in p.name) if folder.exists() else []


def _md5sum_check(folder: Path, sidecar: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["md5sum", "-c", sidecar], cwd=folder, capture_output=True, text=True)


# --- hashing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, BUFFER_SIZE - 1, BUFFER_SIZE + 1, THREADED_HASH_FROM + 3])
def test_hash_file_matches_reference_digests(tmp_path: Path, size: int) -> None:
    data = _payload(size)
    path = _write(tmp_path / "f.bin", data)
    assert hash_file(path, want_md5=True) == _reference(data)


def test_md5_only_when_asked_and_in_the_same_read(tmp_path: Path) -> None:
    data = _payload(3 * BUFFER_SIZE + 5)
    path = _write(tmp_path / "f.bin", data)
    for want_md5 in (False, True):
        seen: list[int] = []
        digests = hash_file(path, want_md5=want_md5, on_bytes=seen.append)
        assert digests == _reference(data, md5=want_md5)
        assert sum(seen) == len(data)  # one pass over the bytes, MD5 or not


def test_hash_files_in_parallel_and_errors_name_the_file(tmp_path: Path) -> None:
    files = {_write(tmp_path / f"f{i}", _payload(1000 * i + 7, bytes([i]))): i % 2 == 0 for i in range(12)}
    got = hash_files(list(files.items()), workers=3)
    assert got == {p: _reference(p.read_bytes(), md5=m) for p, m in files.items()}
    missing = tmp_path / "gone.bin"
    with pytest.raises(IntegrityError, match="gone.bin"):
        hash_files([*files.items(), (missing, False)], workers=2)


# --- sidecars ----------------------------------------------------------------------------------

MD5 = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")


@pytest.mark.parametrize(
    "text",
    [f"{MD5}  a.txt\n", f"{MD5} *a.txt\n", MD5, f"{MD5}\n", f"{MD5.upper()}  a.txt\r\n", f"\\{MD5}  a\\\\b\n"],
)
def test_md5_sidecar_formats_accepted(tmp_path: Path, text: str) -> None:
    _write(tmp_path / "a.txt.md5", text.encode())
    assert read_md5_sidecar(tmp_path / "a.txt") == MD5


def test_md5_sidecar_absent_is_none(tmp_path: Path) -> None:
    assert read_md5_sidecar(_write(tmp_path / "a.txt", b"a")) is None


@pytest.mark.parametrize(
    "text", [b"", b"not a digest\n", MD5[:-1].encode() + b"  a.txt\n", f"{MD5}  a\n{MD5}  b\n".encode(), b"\xff\xfe"]
)
def test_malformed_md5_sidecar_raises_naming_it(tmp_path: Path, text: bytes) -> None:
    _write(tmp_path / "a.txt.md5", text)
    with pytest.raises(IntegrityError, match=r"a\.txt\.md5"):
        read_md5_sidecar(tmp_path / "a.txt")


@pytest.mark.parametrize("name", ["data.fastq.gz", "with space.bin", "back\\slash", "new\nline", "cr\rname"])
def test_written_md5_sidecar_passes_md5sum_check(tmp_path: Path, name: str) -> None:
    data = _payload(5000)
    path = _write(tmp_path / name, data)
    write_sidecar(path, "md5", hashlib.md5(data).hexdigest(), name)
    assert _md5sum_check(tmp_path, f"{name}.md5").returncode == 0
    assert read_md5_sidecar(path) == hashlib.md5(data).hexdigest()
    _write(path, data[:-1] + b"!")
    assert _md5sum_check(tmp_path, f"{name}.md5").returncode == 1
    assert _temps(tmp_path) == []


def test_blake3_sidecar_written_as_b3sum_does(tmp_path: Path) -> None:
    digest = blake3(b"a").hexdigest()
    assert write_sidecar(tmp_path / "a.txt", "blake3", digest, "a.txt").read_bytes() == f"{digest}  a.txt\n".encode()
    # b3sum escapes only backslash and newline, and then marks the line with a leading backslash.
    escaped = write_sidecar(tmp_path / "b", "blake3", digest.upper(), "x\\y\nz\r").read_bytes()
    assert escaped == f"\\{digest}  x\\\\y\\nz\r\n".encode()
    assert read_sidecar(tmp_path / "a.txt", "blake3") == digest
    with pytest.raises(IntegrityError, match="not a blake3 digest"):
        write_sidecar(tmp_path / "c", "blake3", MD5, "c")


# --- verified copy -----------------------------------------------------------------------------


def _source(tmp_path: Path, size: int = 300_000, seed: bytes = b"s", name: str = "src.bin") -> tuple[Path, Digests]:
    path = _write(tmp_path / "drop" / name, _payload(size, seed))
    return path, hash_file(path, want_md5=True)


@pytest.mark.parametrize("size", [300_000, THREADED_HASH_FROM + 5])  # small; big: threaded hash, own fsync
def test_copy_publishes_verified_bytes_and_md5_sidecar(tmp_path: Path, size: int) -> None:
    source, digests = _source(tmp_path, size)
    target = tmp_path / "repo" / "a" / "b" / "final.bin"
    seen: list[int] = []
    assert copy_verified(source, target, digests, "md5", on_bytes=seen.append) == CopyOutcome.COPIED
    assert target.read_bytes() == source.read_bytes()
    assert sum(seen) == digests.size
    assert _md5sum_check(target.parent, "final.bin.md5").returncode == 0
    assert _temps(target.parent) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["final.bin", "final.bin.md5"]


def test_copy_already_synced_keeps_the_existing_file(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    target = _write(tmp_path / "repo" / "t.bin", source.read_bytes())
    inode = target.stat().st_ino
    assert copy_verified(source, target, digests, "blake3") == CopyOutcome.ALREADY_SYNCED
    assert target.stat().st_ino == inode
    assert (tmp_path / "repo" / "t.bin.blake3").read_text() == f"{digests.blake3}  t.bin\n"


def test_copy_target_conflict_leaves_target_untouched(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    other = _payload(digests.size, b"other")
    target = _write(tmp_path / "repo" / "t.bin", other)
    before = target.stat()
    assert copy_verified(source, target, digests, "md5") == CopyOutcome.TARGET_CONFLICT
    assert target.read_bytes() == other
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.bin"]


def test_copy_never_follows_a_symlink_at_the_target(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "t.bin").symlink_to(source)
    assert copy_verified(source, tmp_path / "repo" / "t.bin", digests, None) == CopyOutcome.TARGET_CONFLICT
    assert (tmp_path / "repo" / "t.bin").is_symlink()


@pytest.mark.parametrize("change", ["same_size", "grown", "same_size_big"])
def test_source_changed_since_hashing_is_not_verified(tmp_path: Path, change: str) -> None:
    source, digests = _source(tmp_path, THREADED_HASH_FROM + 5 if change.endswith("big") else 300_000)
    data = bytearray(source.read_bytes())
    data[1000] ^= 0xFF
    source.write_bytes(bytes(data) + (b"more" if change == "grown" else b""))
    target = tmp_path / "repo" / "t.bin"
    assert copy_verified(source, target, digests, "md5") == CopyOutcome.NOT_VERIFIED
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_md5_sidecar_without_md5_digest_is_refused(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    blake3_only = Digests(size=digests.size, blake3=digests.blake3)
    with pytest.raises(IntegrityError, match="no MD5 known"):
        copy_verified(source, tmp_path / "repo" / "t.bin", blake3_only, "md5")
    assert not (tmp_path / "repo" / "t.bin").exists()


def test_batch_copies_in_order_with_one_publisher_per_target(tmp_path: Path) -> None:
    items: list[CopyItem] = []
    for i in range(20):
        source, digests = _source(tmp_path, 16_384, bytes([i]), f"s{i}.bin")
        items.append(CopyItem(source, tmp_path / "repo" / f"t{i}.bin", digests, "md5"))
    # Two drops staging the same target in one batch: both temps exist when the first publishes.
    twin, twin_digests = _source(tmp_path, 16_384, b"twin", "twin.bin")
    items.append(CopyItem(twin, tmp_path / "repo" / "t3.bin", twin_digests, "md5"))
    items.append(CopyItem(items[5].source, tmp_path / "repo" / "t5.bin", items[5].expected, "md5"))
    outcomes = copy_verified_batch(items, workers=2)
    assert outcomes == [CopyOutcome.COPIED] * 20 + [CopyOutcome.TARGET_CONFLICT, CopyOutcome.ALREADY_SYNCED]
    for item in items[:20]:
        assert item.target.read_bytes() == item.source.read_bytes()
    sidecars = sorted(p.name for p in (tmp_path / "repo").glob("*.md5"))
    assert subprocess.run(["md5sum", "-c", *sidecars], cwd=tmp_path / "repo").returncode == 0
    assert _temps(tmp_path / "repo") == []


def test_racing_copies_publish_exactly_once(tmp_path: Path) -> None:
    for round_ in range(8):
        sources = [_source(tmp_path, BUFFER_SIZE // 2, bytes([round_, n]), f"r{round_}-{n}.bin") for n in range(2)]
        target = tmp_path / "repo" / f"race{round_}.bin"
        barrier = threading.Barrier(2)
        outcomes: list[CopyOutcome] = [CopyOutcome.NOT_VERIFIED] * 2

        def run(n: int) -> None:
            barrier.wait()
            outcomes[n] = copy_verified(sources[n][0], target, sources[n][1], "blake3")

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winner = outcomes.index(CopyOutcome.COPIED)
        assert outcomes[1 - winner] == CopyOutcome.TARGET_CONFLICT
        assert target.read_bytes() == sources[winner][0].read_bytes()
        assert read_sidecar(target, "blake3") == sources[winner][1].blake3
    assert _temps(tmp_path / "repo") == []


_CRASHER = """
import os, signal, sys
from pathlib import Path
from dropsync_dagster.core.integrity.sidecars import StagedFile
staged = StagedFile.create(Path(sys.argv[1]))
os.write(staged.fd, b"half a file")
print(staged.path, flush=True)
if sys.argv[2] == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()
"""


def _writer(target: Path, mode: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(target), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_crashed_writer_leaves_no_final_file_and_a_rerun_completes(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    target = _write(tmp_path / "repo" / "keep.txt", b"x").parent / "t.bin"
    proc, temp = _writer(target, "crash")
    assert proc.wait() == -signal.SIGKILL
    assert temp.exists() and not target.exists()
    assert copy_verified(source, target, digests, "blake3") == CopyOutcome.COPIED
    assert target.read_bytes() == source.read_bytes()
    assert _temps(target.parent) == []


def test_live_writers_temps_are_spared(tmp_path: Path) -> None:
    source, digests = _source(tmp_path)
    target = tmp_path / "repo" / "t.bin"
    target.parent.mkdir()
    proc, temp = _writer(target, "live")
    try:
        assert remove_stale_temps(target.parent) == []
        assert copy_verified(source, target, digests, None) == CopyOutcome.COPIED  # under another name
        assert target.read_bytes() == source.read_bytes()
        assert temp.read_bytes() == b"half a file"
    finally:
        proc.kill()
        proc.wait()
    assert remove_stale_temps(target.parent) == [temp]
    assert not temp.exists()


# --- moving originals --------------------------------------------------------------------------


def _original(folder: Path, name: str = "orig.bin") -> tuple[Path, Digests]:
    path = _write(folder / name, _payload(200_000, name.encode()))
    digests = hash_file(path, want_md5=True)
    write_sidecar(path, "md5", digests.md5 or "", name)
    return path, digests


def test_move_same_filesystem_moves_file_and_sidecars(tmp_path: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    sidecar_bytes = (tmp_path / "drop" / "orig.bin.md5").read_bytes()
    inode = source.stat().st_ino
    dest = tmp_path / "processed" / "x" / "orig.bin"
    assert move_original(source, dest, digests) == MoveOutcome.MOVED
    assert not source.exists() and not (tmp_path / "drop" / "orig.bin.md5").exists()
    assert dest.stat().st_ino == inode
    assert (dest.parent / "orig.bin.md5").read_bytes() == sidecar_bytes
    assert _md5sum_check(dest.parent, "orig.bin.md5").returncode == 0


def test_move_with_a_new_basename_rewrites_the_sidecar(tmp_path: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    dest = tmp_path / "processed" / "renamed.bin"
    assert move_original(source, dest, digests) == MoveOutcome.MOVED
    assert _md5sum_check(dest.parent, "renamed.bin.md5").returncode == 0


def test_move_refuses_an_occupied_destination(tmp_path: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    dest = _write(tmp_path / "processed" / "orig.bin", b"someone else's bytes")
    assert move_original(source, dest, digests) == MoveOutcome.EXISTS
    assert dest.read_bytes() == b"someone else's bytes"
    assert hash_file(source, want_md5=True) == digests
    assert (tmp_path / "drop" / "orig.bin.md5").exists() and not (dest.parent / "orig.bin.md5").exists()


def test_move_rerun_after_a_crash_between_link_and_unlink(tmp_path: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    dest = tmp_path / "processed" / "orig.bin"
    dest.parent.mkdir()
    os.link(source, dest)  # the crash happened here
    assert move_original(source, dest, digests) == MoveOutcome.MOVED
    assert not source.exists() and dest.read_bytes() == _payload(200_000, b"orig.bin")
    assert (dest.parent / "orig.bin.md5").exists()


@pytest.fixture
def other_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A folder on a different filesystem from `tmp_path` (/dev/shm is tmpfs), removed afterwards."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem: /dev/shm is missing or shares tmp_path's filesystem")
    with tempfile.TemporaryDirectory(dir=shm, prefix="dropsync-test-") as folder:
        yield Path(folder)


def test_move_across_filesystems_copies_verifies_then_unlinks(tmp_path: Path, other_filesystem: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    dest = other_filesystem / "processed" / "orig.bin"
    assert move_original(source, dest, digests) == MoveOutcome.MOVED
    assert not source.exists() and hash_file(dest, want_md5=True) == digests
    assert _md5sum_check(dest.parent, "orig.bin.md5").returncode == 0
    assert _temps(dest.parent) == []


def test_move_across_filesystems_holds_a_changed_original(tmp_path: Path, other_filesystem: Path) -> None:
    source, digests = _original(tmp_path / "drop")
    source.write_bytes(b"Z" + source.read_bytes()[1:])
    dest = other_filesystem / "orig.bin"
    # One changed original is held; it never fails the other moves (was: IntegrityError).
    assert move_original(source, dest, digests) == MoveOutcome.CHANGED_AFTER_COPY
    assert source.exists() and not dest.exists() and _temps(other_filesystem) == []
