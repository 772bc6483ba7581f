"""Moves of originals that never lose a byte and never move a changed file.

An original moves only while it is still the file that was hashed (device, inode, size, mtime,
ctime), through folder descriptors opened under the drop and under the processed folder, so a
link planted in either cannot send it elsewhere."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from dropsync_dagster.core.integrity import sidecars
from dropsync_dagster.core.fs.confined import Folders, NotAFolderError, nearest_folder
from dropsync_dagster.core.errors import DropsyncError, RefusedError, UnsafePathError
from dropsync_dagster.core.integrity.publish import CopyItem, CopyOutcome, Guard, copy_verified_batch, holds
from dropsync_dagster.core.model import Digests, Identity
from dropsync_dagster.core.integrity.sidecars import BadSidecar
from dropsync_dagster.core.drops.reads import identity_of
from dropsync_dagster.core.fs.staging import flush_folder_fds, sweep, write_atomic_in
from dropsync_dagster.core.testhooks import hook


class MoveOutcome(StrEnum):
    """What `move_originals` did with one original (held outcomes are named as their `Reason`)."""

    MOVED = "moved"
    EXISTS = "exists"  # different content already sits at the destination
    CHANGED_AFTER_COPY = "changed_after_copy"  # not the file that was hashed any more: never moved
    UNSAFE_PATH = "unsafe_path"  # a folder on the way is not a folder, or links out of its root


class MoveItem(NamedTuple):
    """One original: `identity` is the hashed file's (None: not checked); `source_root` and
    `dest_root` confine the two folders (default: their nearest existing folders)."""

    source: Path
    dest: Path
    expected: Digests
    identity: Identity | None = None
    source_root: Path | None = None
    dest_root: Path | None = None


class _Linked(NamedTuple):
    item: MoveItem
    src: int  # source folder
    dst: int  # destination folder
    inode: tuple[int, int] | None  # (dev, ino) the source name must still have to be unlinked


def move_original(source: Path, dest: Path, expected: Digests) -> MoveOutcome:
    """Move one original and its `.md5`/`.blake3` sidecars to `dest` (see move_originals)."""
    return move_originals([(source, dest, expected)])[0]


def move_originals(moves: Sequence[tuple], guard: Guard | None = None, data_first: bool = False) -> list[MoveOutcome]:
    """Move originals (MoveItem or (source, dest, expected) tuples) and their sidecars, never
    overwriting; across filesystems each is copied, made durable and verified before the unlink.
    Outcomes follow `moves`.

    Every new name is made durable (one `syncfs` per filesystem) before any source is unlinked,
    and the unlinks once more at the end. A re-run after a crash finishes a half-done move.
    `guard` is called right before each original is linked and before the unlinks.

    Each source's old sidecar names are unlinked before its data name: a kill in between leaves
    the original in place (its sidecars already at the destination), and the re-run, finding the
    same file at both names, finishes the move. `data_first` unlinks the data name first instead,
    for a move whose sidecar is why the file may not go ahead (into quarantine): a kill then
    leaves stray sidecars, never the file without the `.md5` it fails."""
    outcomes: list[MoveOutcome] = []
    linked: list[_Linked] = []
    with Folders() as folders:
        swept: set[int] = set()
        for item in (MoveItem(*m) for m in moves):
            try:
                src = folders.get(item.source_root or nearest_folder(item.source.parent), item.source.parent)
                dst = folders.get(item.dest_root or nearest_folder(item.dest.parent), item.dest.parent, create=True)
            except NotAFolderError:
                outcomes.append(MoveOutcome.EXISTS)  # a file sits where its folder must be
                continue
            except UnsafePathError:
                outcomes.append(MoveOutcome.UNSAFE_PATH)
                continue
            if dst not in swept:
                sweep(dst)  # temporaries of dead writers in a folder this run writes
                swept.add(dst)
            if guard is not None:
                guard()
            hook("before_move", path=item.source, dest=item.dest)
            outcome, inode = _link_original(item, src, dst)
            outcomes.append(outcome)
            if outcome is MoveOutcome.MOVED:
                linked.append(_Linked(item, src, dst, inode))
        if linked:
            _finish(linked, guard, data_first)
    return outcomes


def _finish(linked: list[_Linked], guard: Guard | None, data_first: bool) -> None:
    """Make the new names durable, then give each original's sidecars their new names and only
    then unlink the old names (see `move_originals` for their order): a failure placing the
    sidecars (disk full) leaves the original in the drop with its sidecars, and a re-run
    finishes the move."""
    flush_folder_fds({move.dst for move in linked})
    if guard is not None:
        guard()
    for move in linked:
        try:
            olds = _place_sidecars(move)
        except OSError as err:
            raise DropsyncError(f"cannot move the sidecars of {move.item.source} to "
                                f"{move.item.dest.parent}: {err.strerror or err}") from err
        if data_first:
            _unlink_source(move)
        for old in olds:
            os.unlink(old, dir_fd=move.src)
        if not data_first:
            _unlink_source(move)
        hook("between_moves", path=move.item.source)
    flush_folder_fds({fd for move in linked for fd in (move.src, move.dst)})


def _unlink_source(move: _Linked) -> None:
    """Unlink the original's source name, if it is still the file that was linked or copied."""
    if move.inode is not None and _inode(move.src, move.item.source.name) == move.inode:
        os.unlink(move.item.source.name, dir_fd=move.src)


def _link_original(item: MoveItem, src: int, dst: int) -> tuple[MoveOutcome, tuple[int, int] | None]:
    """Give the original its new name; (outcome, the inode its source name is still to unlink)."""
    source, dest, expected, identity = item.source, item.dest, item.expected, item.identity
    try:
        st = os.stat(source.name, dir_fd=src, follow_symlinks=False)
    except FileNotFoundError:
        # Crashed after the data moved but before its sidecars did.
        return (MoveOutcome.MOVED if holds(dest, expected, dst) else MoveOutcome.CHANGED_AFTER_COPY), None
    inode = (st.st_dev, st.st_ino)
    if _inode(dst, dest.name) == inode:
        # Crashed between link and unlink: that link changed the ctime, nothing else may have.
        unchanged = identity is None or identity.model_copy(update={"ctime": None}).same_file(identity_of(st))
        return (MoveOutcome.MOVED, inode) if unchanged else (MoveOutcome.CHANGED_AFTER_COPY, None)
    if not stat.S_ISREG(st.st_mode) or (identity is not None and not identity.same_file(identity_of(st))):
        return MoveOutcome.CHANGED_AFTER_COPY, None
    try:
        for kind in sidecars.SIDECAR_KINDS:
            sidecars.read_sidecar_bytes(source, kind, src)
    except BadSidecar:
        return MoveOutcome.CHANGED_AFTER_COPY, None  # its sidecar became a link or a FIFO since
    try:
        os.link(source.name, dest.name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
    except FileExistsError:
        if not (holds(dest, expected, dst) and holds(source, expected, src)):
            return MoveOutcome.EXISTS, None
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise RefusedError(f"cannot move {source} to {dest}: {err.strerror}") from err
        return _copy_across(item, dst), inode
    return MoveOutcome.MOVED, inode


def _copy_across(item: MoveItem, dst: int) -> MoveOutcome:
    """Verified copy to another filesystem; MOVED when `dest` now holds the original's bytes."""
    root = item.dest_root or nearest_folder(item.dest.parent)
    (outcome,) = copy_verified_batch(
        [CopyItem(item.source, item.dest, item.expected, None, root=root, identity=item.identity)], workers=1
    )
    if outcome is CopyOutcome.ALREADY_SYNCED:
        return MoveOutcome.MOVED if holds(item.source, item.expected) else MoveOutcome.EXISTS
    if outcome is CopyOutcome.COPIED:
        return MoveOutcome.MOVED
    if outcome is CopyOutcome.TARGET_CONFLICT:
        return MoveOutcome.EXISTS
    if outcome in (CopyOutcome.UNSAFE_PATH, CopyOutcome.BAD_NAME):
        return MoveOutcome.UNSAFE_PATH
    return MoveOutcome.CHANGED_AFTER_COPY  # not verified, changed, unreadable: it stays


def _inode(folder: int, name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _place_sidecars(move: _Linked) -> list[str]:
    """Give the original's sidecars their new names (kept byte for byte, or rewritten if the
    basename changes); returns the old names, to be unlinked once every new one is there."""
    source, dest = move.item.source, move.item.dest
    olds = []
    for kind in sidecars.SIDECAR_KINDS:
        data = sidecars.read_sidecar_bytes(source, kind, move.src)
        if data is None:
            continue
        old, new = sidecars.sidecar_path(source, kind).name, sidecars.sidecar_path(dest, kind)
        olds.append(old)
        if dest.name != source.name:
            digest = sidecars.read_sidecar(source, kind, move.src) or ""
            data = sidecars.sidecar_line(kind, digest, dest.name).encode("utf-8")
        elif _link_unless_different(move, old, new.name, data):
            # A second name for the same inode: the unlink frees nothing, which on ext4
            # is ~20x cheaper than writing a new sidecar and freeing the old one.
            continue
        write_atomic_in(move.dst, new, data, durable=False)
    return olds


def _link_unless_different(move: _Linked, old: str, new: str, data: bytes) -> bool:
    """Give sidecar `old` the name `new` too; False when it must be written instead (another
    filesystem, or a different sidecar already at `new`, which the caller replaces)."""
    try:
        os.link(old, new, src_dir_fd=move.src, dst_dir_fd=move.dst, follow_symlinks=False)
    except FileExistsError:
        try:
            return sidecars.read_sidecar_bytes(move.item.dest, _kind(new), move.dst) == data
        except BadSidecar:
            return False  # replaced: a rename never follows what sits at the name
    except OSError as err:
        if err.errno == errno.EXDEV:
            return False
        raise
    return True


def _kind(name: str) -> sidecars.SidecarKind:
    return "md5" if name.endswith(".md5") else "blake3"
