"""Sidecar checksum files in `md5sum`/`b3sum` format, and the temporary-file protocol that
publishes every write (sidecars and copies alike) complete or not at all."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from dropsync_dagster.core.errors import IntegrityError

SidecarKind = Literal["md5", "blake3"]
SIDECAR_KINDS: tuple[SidecarKind, ...] = ("md5", "blake3")
TEMP_MARK = ".dropsync-tmp"

_HEX_LENGTH = {"md5": 32, "blake3": 64}
# md5sum escapes \r too (coreutils >= 9); b3sum escapes only backslash and newline.
_ESCAPES = {"md5": {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}, "blake3": {"\\": "\\\\", "\n": "\\n"}}
_LINE = re.compile(r"\\?(?P<hex>[0-9A-Fa-f]+)(?:(?:  | \*).+)?")  # [\]HEX[  name| *name]
_MAX_SIDECAR_BYTES = 64 * 1024  # a real sidecar is one short line; refuse to slurp a big file
_COPY_CHUNK = 64 * 1024 * 1024  # progress granularity of the in-kernel copy
_COPY_BUFFER = 8 * 1024 * 1024
_NO_COPY_FILE_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}
_NAME_ROOM = 200  # keeps `.<name>.dropsync-tmp-<token>` under NAME_MAX (255)


def sidecar_path(file: Path, kind: SidecarKind) -> Path:
    """The sidecar of `kind` beside `file`: `<file>.md5` or `<file>.blake3`."""
    return file.with_name(f"{file.name}.{kind}")


def sidecar_line(kind: SidecarKind, digest: str, name: str) -> str:
    """One line exactly as `md5sum`/`b3sum` print it: `HEX  name`, escaped when the name needs it."""
    _check_digest(kind, digest, name)
    escaped = "".join(_ESCAPES[kind].get(ch, ch) for ch in name)
    prefix = "\\" if escaped != name else ""
    return f"{prefix}{digest.lower()}  {escaped}\n"


def parse_sidecar(text: str, kind: SidecarKind, where: Path) -> str:
    """The lower-case digest of a sidecar's single entry (`HEX  name`, `HEX *name` or bare `HEX`)."""
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if len(lines) != 1:
        raise IntegrityError(f"malformed sidecar {where}: expected one entry, found {len(lines)}")
    match = _LINE.fullmatch(lines[0].strip())
    if match is None or len(match["hex"]) != _HEX_LENGTH[kind]:
        raise IntegrityError(f"malformed sidecar {where}: not a {kind} digest line")
    return match["hex"].lower()


def read_sidecar(file: Path, kind: SidecarKind) -> str | None:
    """The digest recorded in `file`'s sidecar of `kind`, or None when there is no sidecar."""
    path = sidecar_path(file, kind)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(raw) > _MAX_SIDECAR_BYTES:
        raise IntegrityError(f"malformed sidecar {path}: larger than {_MAX_SIDECAR_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise IntegrityError(f"malformed sidecar {path}: not UTF-8 text") from err
    return parse_sidecar(text, kind, path)


def read_md5_sidecar(file: Path) -> str | None:
    """The expected MD5 from `<file>.md5` (md5sum format or bare hex), or None without one."""
    return read_sidecar(file, "md5")


def write_sidecar(file: Path, kind: SidecarKind, digest: str, name: str, durable: bool = True) -> Path:
    """Write `<file>.<kind>` atomically as `HEX  name`; returns the sidecar's path.

    `durable=False` leaves the flush to the caller (one `sync_folders` for a whole batch)."""
    path = sidecar_path(file, kind)
    write_atomic(path, sidecar_line(kind, digest, name).encode("utf-8"), durable)
    return path


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` via a temporary file and a rename (fsync'ed when `durable`)."""
    staged = StagedFile.create(path)
    try:
        staged.write(data)
        if durable:
            os.fsync(staged.fd)
        os.replace(staged.path, path)
    except BaseException:
        staged.discard()
        raise
    staged.close()
    if durable:
        fsync_dir(path.parent)


def _check_digest(kind: SidecarKind, digest: str, name: str) -> None:
    if len(digest) != _HEX_LENGTH[kind] or not all(c in "0123456789abcdefABCDEF" for c in digest):
        raise IntegrityError(f"cannot write {kind} sidecar for {name}: {digest!r} is not a {kind} digest")


@dataclass
class StagedFile:
    """A temporary file beside its final name, held under an exclusive `flock` while it lives:
    a crashed writer's leftover is unlocked, so a re-run for the same name takes it over and
    `remove_stale_temps` may delete it, while a live writer's file is left alone."""

    path: Path
    fd: int

    @classmethod
    def create(cls, final: Path) -> StagedFile:
        """Lock an empty temporary file for `final`: its fixed name `.<name>.dropsync-tmp`
        (reusing a crashed run's leftover), or a unique name while another writer holds that."""
        base = f".{final.name[:_NAME_ROOM]}{TEMP_MARK}"
        staged = cls._claim(final.with_name(base), exclusive=False)
        for _ in range(3):
            if staged is not None:
                return staged
            staged = cls._claim(final.with_name(f"{base}-{secrets.token_hex(6)}"), exclusive=True)
        raise IntegrityError(f"cannot stage a temporary file for {final}: its names keep vanishing")

    @classmethod
    def _claim(cls, path: Path, exclusive: bool) -> StagedFile | None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_EXCL if exclusive else 0)
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as err:
            if exclusive or err.errno not in (errno.ELOOP, errno.EISDIR):
                raise
            return None  # something that is not our temp sits at the fixed name
        try:
            # Non-blocking on the fixed name: another writer in this very process may hold it.
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if exclusive else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        # The name may have been published-and-unlinked, or cleaned, before we held the lock.
        if not _same_inode(path, fd):
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        return cls(path, fd)

    def copy_from(self, src: int, limit: int, on_bytes: Callable[[int], None] | None = None) -> None:
        """Append up to `limit` bytes from `src`'s position: in the kernel (`copy_file_range`,
        measured fastest here) or through a buffer between filesystems that refuse it."""
        copied = 0
        while copied < limit:
            try:
                n = os.copy_file_range(src, self.fd, min(_COPY_CHUNK, limit - copied))
            except OSError as err:
                if copied or err.errno not in _NO_COPY_FILE_RANGE:
                    raise
                with open(src, "rb", closefd=False) as fsrc, open(self.fd, "wb", closefd=False) as fdst:
                    shutil.copyfileobj(fsrc, fdst, _COPY_BUFFER)
                return
            if n == 0:
                return
            copied += n
            if on_bytes is not None:
                on_bytes(n)

    def write(self, data: bytes) -> None:
        """Append all of `data`."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def discard(self) -> None:
        """Remove the temporary file and release it."""
        try:
            os.unlink(self.path)
        finally:
            self.close()

    def close(self) -> None:
        """Release the file (and its lock); idempotent."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def remove_stale_temps(folder: Path, prefix: str = ".") -> list[Path]:
    """Remove temporary files left in `folder` by crashed writers (unlocked ones), optionally only
    names starting with `prefix`; returns them. A re-run for the same name needs no clean-up."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and TEMP_MARK in entry.name):
            continue
        path = Path(entry.path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (FileNotFoundError, IsADirectoryError):
            continue  # gone already, or not ours
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            if _same_inode(path, fd):
                os.unlink(path)
                removed.append(path)
        finally:
            os.close(fd)
    return removed


def _same_inode(path: Path, fd: int) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (new, renamed, removed names) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_parents(folder: Path) -> None:
    """Create `folder` and its missing parents, each new entry made durable in its parent."""
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            if not path.is_dir():
                raise
        fsync_dir(path.parent)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, "syncfs", None)
    if func is not None:
        func.argtypes = [ctypes.c_int]
        func.restype = ctypes.c_int
    return func


_SYNCFS = _load_syncfs()


def syncfs(fd: int) -> bool:
    """Flush the whole filesystem holding `fd` (Linux `syncfs`); False where unavailable."""
    if _SYNCFS is None:
        return False
    if _SYNCFS(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"syncfs failed: {os.strerror(code)}")
    return True


def sync_staged(staged: list[StagedFile], use_syncfs: bool) -> bool:
    """Make staged files durable: one `syncfs` per filesystem if asked and available (True),
    else one fsync each (False)."""
    if use_syncfs and _SYNCFS is not None:
        one_per_folder = {s.path.parent: s.fd for s in staged}  # a temp lives in its final's folder
        for fd in {os.fstat(fd).st_dev: fd for fd in one_per_folder.values()}.values():
            syncfs(fd)
        return True
    for s in staged:
        os.fsync(s.fd)
    return False


def sync_folders(folders: list[Path], by_syncfs: bool) -> None:
    """Make the published names durable: `syncfs` again when the files used it, else fsync each folder."""
    if not by_syncfs:
        for folder in folders:
            fsync_dir(folder)
        return
    for folder in {os.stat(f).st_dev: f for f in folders}.values():
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syncfs(fd)
        finally:
            os.close(fd)


def flush_filesystems(folders: list[Path]) -> None:
    """Make everything written under `folders` durable: one `syncfs` per filesystem (Linux),
    else a full `sync`. For batches of files written with `durable=False`."""
    if _SYNCFS is None:
        os.sync()
        return
    sync_folders(folders, by_syncfs=True)
