"""The temporary-file protocol that publishes every write complete or not at all, through a
folder descriptor: temporaries are created exclusively under names unique to this process,
held under `flock` while they live, and never reopened; dead writers' leftovers are swept."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dropsync_dagster.core.fs.confined import open_root

TEMP_MARK = ".dropsync-tmp"
RUN_TOKEN = secrets.token_hex(4)  # one per process: no two writers ever share a temporary's name
_NAME_ROOM = 200  # bytes of the final name kept in `.<name>.dropsync-tmp-<token>-<random>`
_COPY_CHUNK = 64 * 1024 * 1024  # progress granularity of the in-kernel copy
_COPY_BUFFER = 8 * 1024 * 1024
_NO_COPY_FILE_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(final_name: str) -> str:
    """A fresh temporary name beside `final_name`, unique to this process and call."""
    stem = os.fsdecode(os.fsencode(final_name)[:_NAME_ROOM])
    return f".{stem}{TEMP_MARK}-{RUN_TOKEN}-{secrets.token_hex(4)}"


@dataclass
class StagedFile:
    """A temporary file in the folder `folder_fd` (the folder `path.parent`), created exclusively
    and locked while it lives: a dead writer's leftover is unlocked, so `sweep` may delete it."""

    path: Path
    fd: int
    folder_fd: int
    owns_folder: bool = False

    @classmethod
    def create(cls, final: Path, mode: int = 0o600) -> StagedFile:
        """A temporary for `final` in its folder (opened without following a link there)."""
        folder = open_root(final.parent)
        try:
            staged = cls.create_in(folder, final, mode)
        except BaseException:
            os.close(folder)
            raise
        staged.owns_folder = True
        return staged

    @classmethod
    def create_in(cls, folder_fd: int, final: Path, mode: int = 0o600) -> StagedFile:
        """A temporary for `final` in the open folder `folder_fd`: O_CREAT|O_EXCL|O_NOFOLLOW
        under a new name, so nothing planted at a name is ever opened, truncated or written."""
        for _ in range(3):
            name = temp_name(final.name)
            fd = os.open(name, _TEMP_FLAGS, mode, dir_fd=folder_fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another process's sweep may have taken the name between the open and the lock.
            if _same_inode(folder_fd, name, fd):
                return cls(final.with_name(name), fd, folder_fd)
            os.close(fd)
        raise OSError(errno.EAGAIN, f"cannot stage a temporary file for {final}: its names keep vanishing")

    @property
    def name(self) -> str:
        """The temporary's name in its folder."""
        return self.path.name

    def link_to(self, final_name: str) -> None:
        """Publish under `final_name` without replacing anything (FileExistsError if taken)."""
        os.link(self.name, final_name, src_dir_fd=self.folder_fd, dst_dir_fd=self.folder_fd, follow_symlinks=False)

    def replace(self, final_name: str) -> None:
        """Publish under `final_name`, replacing what is there (sidecars only), and release."""
        os.replace(self.name, final_name, src_dir_fd=self.folder_fd, dst_dir_fd=self.folder_fd)
        self.close()

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
        """Remove the temporary's name and release it (the name is ours: it was made exclusively)."""
        try:
            with contextlib.suppress(FileNotFoundError):  # swept or removed by hand: nothing left to remove
                os.unlink(self.name, dir_fd=self.folder_fd)
        finally:
            self.close()

    def close(self) -> None:
        """Release the file (and its lock, and its folder if it opened it); idempotent."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.owns_folder:
            os.close(self.folder_fd)
            self.owns_folder = False


def sweep(folder_fd: int, prefix: str = ".") -> list[str]:
    """Remove temporaries that dead writers left in the open folder (unlocked ones, optionally
    only names starting with `prefix`); returns their names. A live writer's are left alone."""
    removed: list[str] = []
    own = f"{TEMP_MARK}-{RUN_TOKEN}-"  # this process is alive: its temporaries are too
    for entry in os.scandir(folder_fd):
        if not (entry.name.startswith(prefix) and TEMP_MARK in entry.name) or own in entry.name:
            continue
        try:
            fd = os.open(entry.name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
        except (FileNotFoundError, IsADirectoryError):
            continue  # gone already, or not ours
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            os.unlink(entry.name, dir_fd=folder_fd)  # a link at a name only we create: not ours
            removed.append(entry.name)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            if _same_inode(folder_fd, entry.name, fd):
                os.unlink(entry.name, dir_fd=folder_fd)
                removed.append(entry.name)
        finally:
            os.close(fd)
    return removed


def remove_stale_temps(folder: Path, prefix: str = ".") -> list[Path]:
    """`sweep` by path; a missing folder has nothing to sweep."""
    try:
        fd = open_root(folder)
    except FileNotFoundError:
        return []
    try:
        return [folder / name for name in sweep(fd, prefix)]
    finally:
        os.close(fd)


def _same_inode(folder_fd: int, name: str, fd: int) -> bool:
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def write_atomic_in(folder_fd: int, final: Path, data: bytes, durable: bool = True, mode: int = 0o644) -> None:
    """Replace `final` (in the open folder) with `data` via a temporary and a rename."""
    staged = StagedFile.create_in(folder_fd, final, mode)
    try:
        staged.write(data)
        os.fchmod(staged.fd, mode)
        if durable:
            os.fsync(staged.fd)
        staged.replace(final.name)
    except BaseException:
        staged.discard()
        raise
    if durable:
        os.fsync(folder_fd)


def write_atomic(path: Path, data: bytes, durable: bool = True, mode: int = 0o644) -> None:
    """`write_atomic_in` for `path`'s folder, opened without following a link there."""
    folder = open_root(path.parent)
    try:
        write_atomic_in(folder, path, data, durable, mode)
    finally:
        os.close(folder)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (new, renamed, removed names) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        for fd in {os.fstat(s.fd).st_dev: s.fd for s in staged}.values():
            syncfs(fd)
        return True
    for s in staged:
        os.fsync(s.fd)
    return False


def sync_folder_fds(folders: Iterable[int], by_syncfs: bool) -> None:
    """Make the names published in these open folders durable: `syncfs` once per filesystem
    when the files used it, else fsync each folder."""
    fds = list(folders)
    if not by_syncfs:
        for fd in fds:
            os.fsync(fd)
        return
    for fd in {os.fstat(fd).st_dev: fd for fd in fds}.values():
        syncfs(fd)


def flush_folder_fds(folders: Iterable[int]) -> None:
    """Make everything written in these open folders durable: one `syncfs` per filesystem
    (Linux), else a full `sync`. For batches written with `durable=False`."""
    if _SYNCFS is None:
        os.sync()
        return
    sync_folder_fds(folders, by_syncfs=True)


def flush_filesystems(folders: list[Path]) -> None:
    """`flush_folder_fds` for folders given by path."""
    fds = [os.open(f, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) for f in folders]
    try:
        flush_folder_fds(fds)
    finally:
        for fd in fds:
            os.close(fd)
