"""Snapshots of folder trees that never follow links and work past PATH_MAX (descriptor-based)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from dropsync_dagster.core.integrity.sidecars import TEMP_MARK
from dropsync_dagster_tests.hostile.scene import sha256

Snapshot = dict[str, tuple]


def snapshot(root: Path, skip: Iterable[Path] = ()) -> Snapshot:
    """Every entry below `root` (never following links, fd-based so paths past PATH_MAX work)."""
    skipped = {str(p) for p in skip}
    out: Snapshot = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        # A skipped folder is left out with its own entry: its link count follows its contents.
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
        rel_dir = dirpath[len(str(root)) + 1 :]
        for name in [*dirnames, *(f for f in filenames if os.path.join(dirpath, f) not in skipped)]:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            out[rel] = _entry(name, dirfd)
    return out


def _entry(name: str, dirfd: int) -> tuple:
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    kind = stat.S_IFMT(st.st_mode)
    common = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink)
    if stat.S_ISREG(kind):
        return (*common, st.st_size, st.st_mtime_ns, _digest(name, dirfd))
    if stat.S_ISLNK(kind):
        return (*common, os.readlink(name, dir_fd=dirfd))
    return common


def _digest(name: str, dirfd: int) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    with open(fd, "rb") as f:
        return sha256(f.read())


def originals(drop: Path) -> dict[str, tuple]:
    """What a later run must keep: every non-folder of the drop except our `.blake3` sidecars
    and temporaries (a planted one may be cleaned up as stale)."""
    return {rel: _identity(e) for rel, e in snapshot(drop).items()
            if e[0] != stat.S_IFDIR and not rel.endswith(".blake3") and TEMP_MARK not in rel}


def _identity(entry: tuple) -> tuple:
    """Kind plus content (regular files) or target (links): what 'byte-identical' compares."""
    kind = entry[0]
    return (kind, entry[-1]) if kind in (stat.S_IFREG, stat.S_IFLNK) else (kind,)


def probe(root: Path, rel: str) -> tuple | None:
    """The identity of `root/rel` walking folders without following links, or None."""
    parts = rel.split("/")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return _identity(_entry(parts[-1], fd))
    except OSError:
        return None
    finally:
        os.close(fd)
