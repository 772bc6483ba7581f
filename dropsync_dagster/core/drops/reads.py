"""Every read of a drop file is the planned file: opened without following a link or blocking
on a FIFO, a regular file, and the same device, inode, size and mtime as planning recorded."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.model import Identity, Reason

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # vanished, or a link or file now sits on its path


class HeldFile(DropsyncError):
    """One file cannot go on; `reason` says why. It is held, and the drop goes on."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def identity_of(st: os.stat_result) -> Identity:
    """The identity of a file from its stat."""
    return Identity(device=st.st_dev, inode=st.st_ino, size=st.st_size, mtime=st.st_mtime, ctime=st.st_ctime)


def open_source(path: Path, planned: Identity | None, folder_fd: int | None = None) -> tuple[int, os.stat_result]:
    """A read descriptor of `path` and its stat, when it is still the planned regular file;
    HeldFile otherwise (`changed_since_plan`, `unreadable` or `bad_name`). With `folder_fd`,
    `path`'s name is opened in that folder."""
    try:
        fd = os.open(path.name if folder_fd is not None else path, _READ, dir_fd=folder_fd)
    except OSError as err:
        raise _held(path, err) from err
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HeldFile(Reason.CHANGED_SINCE_PLAN, f"{path}: no longer a regular file")
        if planned is not None and not planned.same_file(identity_of(st)):
            raise HeldFile(Reason.CHANGED_SINCE_PLAN, f"{path}: not the file that was planned (changed or replaced)")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _held(path: Path, err: OSError) -> HeldFile:
    if err.errno in _GONE:
        why = "became a symlink" if err.errno == errno.ELOOP else "vanished"
        return HeldFile(Reason.CHANGED_SINCE_PLAN, f"{path}: {why} since it was planned")
    if err.errno == errno.ENAMETOOLONG:
        return HeldFile(Reason.BAD_NAME, f"{path}: name too long")
    return HeldFile(Reason.UNREADABLE, f"cannot read {path}: {err.strerror}")
