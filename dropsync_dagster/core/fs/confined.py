"""Folders opened and created under a root without following a symlink out of it.

Every write below a root (repository, processed, a drop, the archive and key folders) goes
through a folder descriptor from `open_under`, and its syscalls take `dir_fd=`: a link planted
after planning can never lead a write elsewhere. A symlinked folder whose target lies inside the
same root is resolved by text and then walked again without following anything, so a link that
changes meanwhile only makes the walk refuse.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from dropsync_dagster.core.errors import UnsafePathError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's own limit on links resolved in one path


def open_root(root: Path) -> int:
    """A descriptor of `root` itself, refused when `root` is a symlink or not a folder."""
    try:
        return os.open(root, _DIR)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(f"{root}: a symlink or not a folder; refusing to write through it") from err
        raise


def open_under(root: Path, folder: Path, *, create: bool = False, mode: int = 0o777) -> int:
    """A descriptor of `folder`, walked from `root` one component at a time with O_NOFOLLOW;
    missing folders are made when `create` (each made durable in its parent). UnsafePathError
    when a component is not a folder or links out of `root`."""
    parts = _relative_parts(root, folder)
    links = 0
    while True:
        fd = open_root(root)
        done: list[str] = []
        try:
            for i, part in enumerate(parts):
                try:
                    child = _open_child(fd, part, create, mode)
                except _Symlink:
                    links += 1
                    if links > _MAX_LINKS:
                        raise UnsafePathError(f"{folder}: too many symlinks below {root}") from None
                    parts = _resolve_inside(root, done + [part]) + parts[i + 1 :]
                    break
                except NotADirectoryError as err:
                    raise NotAFolderError(f"{folder}: {root.joinpath(*done, part)} is not a folder") from err
                os.close(fd)
                fd = child
                done.append(part)
            else:
                result, fd = fd, -1
                return result
        finally:
            if fd >= 0:
                os.close(fd)


class NotAFolderError(UnsafePathError):
    """Something other than a folder (and not a link) sits where a folder must be."""


class _Symlink(Exception):
    """A component is a symlink (ELOOP on O_NOFOLLOW)."""


def _open_child(parent: int, name: str, create: bool, mode: int) -> int:
    for _ in range(2):
        try:
            return os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, mode, dir_fd=parent)
                os.fsync(parent)
            except FileExistsError:
                continue  # made by someone else meanwhile: open it
        except OSError as err:
            # O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR (Linux) or ELOOP.
            if err.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
                raise _Symlink() from err
            raise
    return os.open(name, _DIR, dir_fd=parent)


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _resolve_inside(root: Path, parts: list[str]) -> list[str]:
    """The components below `root` that a symlinked folder resolves to; refused outside `root`."""
    link = root.joinpath(*parts)
    real, real_root = Path(os.path.realpath(link)), Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"{link}: links to {real}, outside {root}; refusing to write through it")
    return list(real.relative_to(real_root).parts)


def _relative_parts(root: Path, folder: Path) -> list[str]:
    rel = os.path.relpath(os.path.normpath(folder), os.path.normpath(root))
    parts = [] if rel == "." else rel.split(os.sep)
    if ".." in parts or os.path.isabs(rel):
        raise UnsafePathError(f"{folder}: not inside {root}")
    return parts


def root_of(path: Path, roots: Iterable[Path]) -> Path:
    """The deepest of `roots` holding `path` (the folder its creation is confined to)."""
    holding = [r for r in roots if path == r or r in path.parents]
    if not holding:
        raise UnsafePathError(f"{path}: outside every allowed root")
    return max(holding, key=lambda r: len(r.parts))


def nearest_folder(folder: Path) -> Path:
    """`folder` or its nearest existing ancestor: the default root of a write."""
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def make_root(outer: Path | None, root: Path, mode: int = 0o777) -> None:
    """Make `root` (and its missing parents) by a confined walk from `outer`, the allowed root
    holding it; with no `outer`, `root` must already exist."""
    if outer is not None:
        os.close(open_under(outer, root, create=True, mode=mode))
    else:
        os.close(open_root(root))


class Folders:
    """Folder descriptors opened under their roots once per step, closed together."""

    def __init__(self) -> None:
        self._open: dict[tuple[Path, Path], int] = {}

    def get(self, root: Path, folder: Path, *, create: bool = False) -> int:
        """`open_under(root, folder, create=create)`, cached."""
        key = (root, folder)
        fd = self._open.get(key)
        if fd is None:
            fd = self._open[key] = open_under(root, folder, create=create)
        return fd

    def moved(self) -> set[int]:
        """The open folders no longer reached by walking from their root again (renamed, or
        their path now leads through a link out of the root): what was written in them is not
        at its planned path."""
        gone: set[int] = set()
        for (root, folder), fd in self._open.items():
            try:
                again = open_under(root, folder)
            except (FileNotFoundError, UnsafePathError):
                gone.add(fd)
                continue
            try:
                if not os.path.samestat(os.fstat(again), os.fstat(fd)):
                    gone.add(fd)
            finally:
                os.close(again)
        return gone

    def close(self) -> None:
        """Close every descriptor."""
        while self._open:
            os.close(self._open.popitem()[1])

    def __enter__(self) -> Folders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
