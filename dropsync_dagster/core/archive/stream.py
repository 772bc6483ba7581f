"""The archive byte streams: a tar of drop files piped into `gpg --symmetric`, and a validation
that decrypts the file while gpg is still writing it and re-hashes every member."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from dropsync_dagster.core.errors import DropsyncError, IntegrityError
from dropsync_dagster.core.archive.gpg import ARCHIVE_S2K, Gpg, last_line, passphrase_fd, widen_pipe
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.testhooks import hook

CHUNK = 1024 * 1024  # bytes per read, hash update and pipe write
_FOLLOW_PAUSE = 0.005  # seconds the follower waits when it has caught up with gpg's writes

OnBytes = Callable[[int], None]


class MemberChanged(IntegrityError):
    """A member is not the file it was while it was read into the tar (the tar is torn)."""

    def __init__(self, rel: str, message: str) -> None:
        super().__init__(message)
        self.rel = rel


@dataclass(frozen=True)
class StreamOutcome:
    """What one archive stream wrote, and the timings of encryption and validation."""

    written: dict[str, Digests]  # member -> digests computed while reading it for tar
    content_bytes: int  # member bytes streamed into the tar
    encrypt_seconds: float  # start until gpg finished writing the archive
    validate_seconds: float | None  # span of the (concurrent) validation; None when not validated
    total_seconds: float


def stream_archive(
    drop_dir: Path,
    members: Sequence[str],
    expected: Mapping[str, str],
    out_fd: int,
    passphrase: str,
    gpg: Gpg,
    *,
    validate: bool = True,
    on_bytes: OnBytes | None = None,
    label: str = "archive",
    drop: str = "",
) -> StreamOutcome:
    """Encrypt a tar of `members` into `out_fd` (a readable, empty file; fsynced); with `validate`,
    decrypt it concurrently and require every member's BLAKE3 to match what was written and `expected`."""
    started = time.monotonic()
    check = _Validation(gpg, out_fd, passphrase, label) if validate else None
    try:
        written = _encrypt(drop_dir, members, expected, out_fd, passphrase, gpg, on_bytes, label, drop)
    except BaseException:
        if check is not None:
            check.abort()
        raise
    encrypt_seconds = time.monotonic() - started
    validate_seconds = None
    if check is not None:
        check.encryption_done.set()
        _compare(check.finish(), written, expected, label)
        validate_seconds = time.monotonic() - started
    content = sum(d.size for d in written.values())
    return StreamOutcome(written, content, encrypt_seconds, validate_seconds, time.monotonic() - started)


def _encrypt(
    drop_dir: Path, members: Sequence[str], expected: Mapping[str, str], out_fd: int, passphrase: str, gpg: Gpg,
    on_bytes: OnBytes | None, label: str, drop: str,
) -> dict[str, Digests]:
    """Run `gpg --symmetric` writing to `out_fd` and feed it the tar through a pipe."""
    with tempfile.TemporaryFile() as err:
        with passphrase_fd(passphrase) as pfd:
            enc = subprocess.Popen(
                gpg.command("--symmetric", "--cipher-algo", "AES256", "--compress-algo", "none",
                            *ARCHIVE_S2K, *gpg.symmetric_args(pfd)),
                stdin=subprocess.PIPE, stdout=out_fd, stderr=err, pass_fds=(pfd,), bufsize=0,
            )
        widen_pipe(enc.stdin.fileno())
        try:
            written = _write_tar(enc.stdin.fileno(), drop_dir, members, expected, on_bytes, drop)
            enc.stdin.close()
        except BrokenPipeError:
            enc.wait()  # gpg stopped reading: its own message says why (a full disk, usually)
            raise _gpg_failed(label, err) from None
        except BaseException:
            enc.kill()
            enc.wait()
            raise
        if enc.wait() != 0:
            raise _gpg_failed(label, err)
    os.fsync(out_fd)
    return written


def _gpg_failed(label: str, err: BinaryIO) -> DropsyncError:
    err.seek(0)
    reason = last_line(err.read())
    if os.strerror(errno.ENOSPC) in reason or os.strerror(errno.EDQUOT) in reason:
        return DropsyncError(f"disk full writing {label}: {reason}")
    return DropsyncError(f"writing {label}: gpg failed: {reason}")


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of `data`: a pipe or a filling disk may take less than asked."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_tar(
    out: int, drop_dir: Path, members: Sequence[str], expected: Mapping[str, str], on_bytes: OnBytes | None,
    drop: str = "",
) -> dict[str, Digests]:
    """Write a POSIX (pax) tar of `members` to the pipe `out`, hashing each file as it is written."""
    view = memoryview(bytearray(CHUNK))
    written: dict[str, Digests] = {}
    offset = 0
    for rel in members:
        try:
            fd = os.open(drop_dir / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise MemberChanged(rel, f"{drop_dir / rel}: vanished before it was archived") from err
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise MemberChanged(rel, f"{drop_dir / rel}: became a symlink before it was archived") from err
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise MemberChanged(rel, f"{rel}: no longer a regular file in {drop_dir}")
            header = _header(rel, before)
            write_all(out, header)
            digest = _copy_hashed(fd, before.st_size, out, view, rel, on_bytes)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        # Size or mtime moving under us means the bytes in the tar may be a torn mix.
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise MemberChanged(rel, f"{drop_dir / rel}: changed while being archived")
        if rel in expected and expected[rel] != digest:
            raise MemberChanged(
                rel, f"{drop_dir / rel}: BLAKE3 {digest[:16]}… differs from its checksum {expected[rel][:16]}…"
                " (changed since it was checksummed?)"
            )
        padding = -before.st_size % tarfile.BLOCKSIZE
        write_all(out, tarfile.NUL * padding)
        offset += len(header) + before.st_size + padding
        written[rel] = Digests(size=before.st_size, blake3=digest)
        if len(written) == 1:
            hook("archive_encrypting", drop=drop)  # gpg is running, one member is in
    # End of archive: two zero blocks, then zeros up to a whole record, as tar(1) writes it.
    trailer = 2 * tarfile.BLOCKSIZE
    trailer += -(offset + trailer) % tarfile.RECORDSIZE
    write_all(out, tarfile.NUL * trailer)
    return written


def _header(rel: str, st: os.stat_result) -> bytes:
    info = tarfile.TarInfo(rel)
    info.size = st.st_size
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _copy_hashed(fd: int, size: int, out: int, view: memoryview, rel: str, on_bytes: OnBytes | None) -> str:
    hasher = blake3()
    remaining = size
    while remaining:
        n = os.readv(fd, [view[: min(CHUNK, remaining)]])
        if n == 0:
            raise MemberChanged(rel, f"{rel}: shrank while being archived")
        chunk = view[:n]
        hasher.update(chunk)
        write_all(out, chunk)
        remaining -= n
        if on_bytes is not None:
            on_bytes(n)
    return hasher.hexdigest()


def _compare(
    archived: dict[str, Digests], written: dict[str, Digests], expected: Mapping[str, str], label: str
) -> None:
    """Every member exactly as written, nothing missing or extra, planned files as checksummed."""
    for rel, digests in written.items():
        found = archived.get(rel)
        if found is None:
            raise IntegrityError(f"{label}: {rel} is missing from the decrypted archive")
        if found != digests:
            raise IntegrityError(f"{label}: decrypted {rel} differs from the bytes written")
        if rel in expected and expected[rel] != found.blake3:
            raise IntegrityError(f"{label}: decrypted {rel} differs from its checksum")
    extra = sorted(set(archived) - set(written))
    if extra:
        raise IntegrityError(f"{label}: {extra[0]} is in the decrypted archive but was never written")


class _Validation:
    """`gpg --decrypt` fed by a thread that follows the growing archive file, and a thread that
    reads the decrypted tar and hashes each member: validation costs little extra wall time."""

    def __init__(self, gpg: Gpg, archive_fd: int, passphrase: str, label: str) -> None:
        self.label = label
        self.encryption_done = threading.Event()
        self._abort = threading.Event()
        self._errors: list[BaseException] = []
        self._digests: dict[str, Digests] = {}
        self._stderr = tempfile.TemporaryFile()
        with passphrase_fd(passphrase) as pfd:
            self._proc = subprocess.Popen(
                gpg.command("--decrypt", *gpg.symmetric_args(pfd)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, pass_fds=(pfd,),
            )
        widen_pipe(self._proc.stdin.fileno())
        widen_pipe(self._proc.stdout.fileno())
        self._archive_fd = archive_fd
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._follow,), daemon=True),
            threading.Thread(target=self._guarded, args=(self._read_tar,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # handed to finish(), which raises it in the caller's thread
            self._errors.append(exc)
            self._proc.kill()  # unblocks the other thread, which may wait on a pipe

    def _follow(self) -> None:
        src, dst = self._archive_fd, self._proc.stdin.fileno()
        offset = 0
        while not self._abort.is_set():
            # Read the flag before reading: once gpg is done, one more empty read means the end.
            done = self.encryption_done.is_set()
            sent = os.sendfile(dst, src, offset, CHUNK)  # an explicit offset leaves gpg's position alone
            offset += sent
            if sent == 0:
                if done:
                    break
                self.encryption_done.wait(_FOLLOW_PAUSE)
        self._proc.stdin.close()

    def _read_tar(self) -> None:
        with tarfile.open(fileobj=self._proc.stdout, mode="r|", bufsize=CHUNK) as tar:
            while (info := tar.next()) is not None:
                tar.members.clear()  # stream mode keeps every header: memory would grow per member
                if not info.isreg():
                    raise IntegrityError(f"{info.name}: unexpected {info.type!r} entry in the archive")
                if info.name in self._digests:
                    raise IntegrityError(f"{info.name}: appears twice in the archive")
                hasher, size = blake3(), 0
                member = tar.extractfile(info)
                while chunk := member.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                self._digests[info.name] = Digests(size=size, blake3=hasher.hexdigest())
        # gpg checks the modification detection code only at the very end: read all of it.
        while self._proc.stdout.read(CHUNK):
            continue

    def finish(self) -> dict[str, Digests]:
        """Wait for the decryption; the digests of every member, or IntegrityError."""
        for thread in self._threads:
            thread.join()
        returncode = self._proc.wait()
        self._close()
        if self._errors:
            raise IntegrityError(f"validating {self.label}: {self._errors[0]}") from self._errors[0]
        if returncode != 0:
            self._stderr.seek(0)
            raise IntegrityError(f"validating {self.label}: gpg --decrypt failed: {last_line(self._stderr.read())}")
        return self._digests

    def abort(self) -> None:
        """Stop validating: the archive is being abandoned."""
        self._abort.set()
        self.encryption_done.set()
        self._proc.kill()
        for thread in self._threads:
            thread.join()
        self._proc.wait()
        self._close()

    def _close(self) -> None:
        self._stderr.close()
        self._proc.stdout.close()
