"""Reading one archive generation back: decrypted as a stream, every member re-hashed, and the
whole of it trusted only when gpg's status says the message was intact (MDC or AEAD checked)."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple

from blake3 import blake3

from dropsync_dagster.core.archive.gpg import Gpg, last_line, passphrase_fd
from dropsync_dagster.core.archive.stream import CHUNK
from dropsync_dagster.core.model import Digests

STATUS = "[GNUPG:] "
# gpg prints plaintext before it can check the message's integrity code at the very end: only
# these status words, after the last byte, say that what was read is what was encrypted.
_FAILED = {"DECRYPTION_FAILED", "BADMDC"}

Sink = Callable[[tarfile.TarInfo], BinaryIO | None]  # where a member's bytes go; None: hashed only


class GenerationRead(NamedTuple):
    """The members read from one decrypted archive, and why the archive cannot be trusted (or None)."""

    members: dict[str, Digests]
    problem: str | None


def drop_cached(fd: int) -> None:
    """Ask the kernel to forget the file's cached pages, so the next read comes from the disk."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def open_uncached(path: Path) -> int:
    """A read descriptor of the regular file `path` (no link followed), its cached pages dropped."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(f"{path}: not a regular file")
    drop_cached(fd)
    return fd


def read_generation(archive: Path, passphrase: str, gpg: Gpg, sink: Sink | None = None) -> GenerationRead:
    """Decrypt `archive` (read from the disk, not the page cache) and hash every tar member;
    `sink` may ask for a member's bytes. Nothing raised for damage: it is the `problem`."""
    fd = open_uncached(archive)
    try:
        with tempfile.TemporaryFile() as err:
            with passphrase_fd(passphrase) as pfd:
                proc = subprocess.Popen(
                    gpg.command("--status-fd", "2", "--decrypt", *gpg.symmetric_args(pfd)),
                    stdin=fd, stdout=subprocess.PIPE, stderr=err, pass_fds=(pfd,),
                )
            try:
                tar = _read_tar(proc.stdout, sink)
                while proc.stdout.read(CHUNK):  # the integrity code is checked only at the very end
                    continue
            except BaseException:  # the sink failed (a full disk): gpg must not outlive the read
                proc.kill()
                raise
            finally:
                proc.stdout.close()
                returncode = proc.wait()
            err.seek(0)
            gpg_problem = _gpg_verdict(returncode, err.read())
    finally:
        drop_cached(fd)  # an audit must not fill the cache with archives
        os.close(fd)
    return GenerationRead(tar.members, gpg_problem or tar.problem)


def _read_tar(stream: BinaryIO, sink: Sink | None) -> GenerationRead:
    members: dict[str, Digests] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:
            while (info := tar.next()) is not None:
                tar.members.clear()  # stream mode keeps every header: memory would grow per member
                if not info.isreg():
                    return GenerationRead(members, f"unexpected {info.type!r} entry {info.name!r} in the archive")
                if info.name in members:
                    return GenerationRead(members, f"{info.name} appears twice in the archive")
                out = sink(info) if sink is not None else None
                try:
                    members[info.name] = _copy(tar.extractfile(info), out)
                finally:
                    if out is not None:
                        out.close()
    except (tarfile.TarError, EOFError) as exc:
        return GenerationRead(members, f"the decrypted tar is broken: {exc}")
    return GenerationRead(members, None)


def _copy(member: BinaryIO, out: BinaryIO | None) -> Digests:
    hasher, size = blake3(), 0
    while chunk := member.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return Digests(size=size, blake3=hasher.hexdigest())


def _gpg_verdict(returncode: int, stderr: bytes) -> str | None:
    """None when gpg decrypted the whole message and verified its integrity; else gpg's reason."""
    lines = stderr.decode(errors="replace").splitlines()
    words = {line[len(STATUS):].split(" ", 1)[0]: line[len(STATUS):] for line in lines if line.startswith(STATUS)}
    said = last_line("\n".join(line for line in lines if not line.startswith(STATUS)).encode())
    if returncode != 0 or _FAILED & set(words):
        return f"gpg --decrypt failed: {said}"
    if "DECRYPTION_OKAY" not in words:
        return "gpg did not report DECRYPTION_OKAY"
    info = words.get("DECRYPTION_INFO", "").split()  # DECRYPTION_INFO <mdc> <cipher> [<aead>]
    aead = len(info) > 3 and info[3] != "0"
    if "GOODMDC" not in words and not aead:
        return "gpg reported no integrity check (no MDC): the archive may have been manipulated"
    return None
