"""Reading a small file a drop supplies (`sync.yml`, a CSV or Excel metadata source) safely.

Opened with O_NOFOLLOW|O_NONBLOCK, so a symlink is refused and a FIFO cannot hang the open;
then it must be a regular file (fstat) of at most `limit` bytes. The file is read once, from the
descriptor that was checked, so what was checked is what is parsed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.drops.layout import inside

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_regular(path: Path, limit: int, label: str, within: Sequence[Path] = ()) -> bytes:
    """The bytes of regular file `path` (at most `limit`); anything else is one ConfigError line
    starting with `label`. With `within`, the opened file must still lie in one of those folders
    (checked on the descriptor, so a folder swapped for a link after a realpath check is caught)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{label}: cannot read: file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{label}: is a symbolic link; a regular file is required") from None
        raise ConfigError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        kind = next((name for test, name in _KINDS if test(st.st_mode)), None)
        if kind is not None or not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{label}: is {kind or 'not a regular file'}; a regular file is required")
        if st.st_size > limit:
            raise ConfigError(f"{label}: {st.st_size} bytes, more than the limit of {limit} bytes")
        if within:
            _check_opened(fd, within, label)
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after the fstat
        raise ConfigError(f"{label}: more than the limit of {limit} bytes")
    return data


def _read_at_most(fd: int, count: int) -> bytes:
    chunks, left = [], count
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _check_opened(fd: int, within: Sequence[Path], label: str) -> None:
    """Where the descriptor really points must lie in `within` (Linux: /proc/self/fd)."""
    try:
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return  # no /proc: the caller's realpath check stands alone
    if not any(inside(opened, root) for root in within):
        raise ConfigError(f"{label}: the file opened is not inside the folders it may be read from")
