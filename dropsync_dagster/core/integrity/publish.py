"""Verified copies published without overwrite, confined to their root when they are written.

Each target folder is opened under its root without following a link out of it; the source is
opened only when it is still the planned regular file; the copy goes to a temporary created
exclusively under a name unique to this process, takes the source's permission bits (or the
deployment's `DROPSYNC_FILE_MODE`), is verified, made durable and linked to its final name.
Moves of originals live in `core.moves` (re-exported here)."""

from __future__ import annotations

import errno
import os
import resource
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from dropsync_dagster.core.integrity import sidecars
from dropsync_dagster.core.fs.confined import Folders, NotAFolderError, nearest_folder
from dropsync_dagster.core.errors import IntegrityError, RefusedError, UnsafePathError
from dropsync_dagster.core.integrity.hashing import DEFAULT_WORKERS, THREADED_HASH_FROM, OnBytes, hash_fd
from dropsync_dagster.core.model import Digests, Identity
from dropsync_dagster.core.integrity.sidecars import BadSidecar, SidecarKind
from dropsync_dagster.core.drops.reads import HeldFile, open_source
from dropsync_dagster.core.fs.staging import StagedFile, sweep, sync_folder_fds, sync_staged
from dropsync_dagster.core.testhooks import hook

# Called right before each irreversible action; raises RefusedError once the run lost its claim.
Guard = Callable[[], None]

# Files staged before one `syncfs`: each holds two descriptors until published.
BATCH_FILES = max(16, min(1024, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256) // 4))
BATCH_BYTES = 1024 * 1024 * 1024  # ... and dirty pages waiting for it
SYNCFS_FROM = 4  # fewer staged files than this are fsync'ed one by one
NAME_MAX = 255
_LONGEST_SUFFIX = len(".blake3")
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


class CopyOutcome(StrEnum):
    """What `copy_verified` did with one file (held outcomes are named as their `Reason`)."""

    COPIED = "copied"
    ALREADY_SYNCED = "already_synced"  # identical content was already at the target
    TARGET_CONFLICT = "target_conflict"  # different content is there; it was not touched
    NOT_VERIFIED = "not_verified"  # the copied bytes did not match the expected digests
    UNSAFE_PATH = "unsafe_path"  # the target's folder is not a folder, or links out of its root
    CHANGED_SINCE_PLAN = "changed_since_plan"  # the source is not the planned file any more
    UNREADABLE = "unreadable"  # the source cannot be read
    BAD_NAME = "bad_name"  # the target's name (or its sidecar's) is too long


class CopyItem(NamedTuple):
    """One file for `copy_verified_batch`: `root` confines the target's folder (default: its
    nearest existing folder), `identity` is the planned source's (None: not checked)."""

    source: Path
    target: Path
    expected: Digests
    sidecar_kind: SidecarKind | None
    root: Path | None = None
    identity: Identity | None = None


def copy_verified(
    source: Path,
    target: Path,
    expected: Digests,
    sidecar_kind: SidecarKind | None,
    on_bytes: OnBytes | None = None,
) -> CopyOutcome:
    """Copy `source` to `target` via a re-hashed, durable temporary file, published without
    overwrite, then write `<target>.<sidecar_kind>` naming the target's basename.
    `on_bytes` counts bytes copied (its total is the file's size; verifying follows each file)."""
    return copy_verified_batch([CopyItem(source, target, expected, sidecar_kind)], on_bytes, workers=1)[0]


def copy_verified_batch(
    items: Sequence[CopyItem],
    on_bytes: OnBytes | None = None,
    workers: int = DEFAULT_WORKERS,
    guard: Guard | None = None,
    file_mode: int | None = None,
) -> list[CopyOutcome]:
    """`copy_verified` for many files: copied and verified by `workers` threads, small files made
    durable by one `syncfs` per group (Linux; per-file fsync elsewhere). Outcomes follow `items`.
    `guard` is called right before each publish; `file_mode` fixes the copies' mode."""
    outcomes: list[CopyOutcome] = []
    for group in _groups(items):
        outcomes.extend(_copy_group(group, on_bytes, workers, guard, file_mode))
    return outcomes


def _groups(items: Sequence[CopyItem]) -> Iterator[list[CopyItem]]:
    group: list[CopyItem] = []
    size = 0
    for item in items:
        if group and (len(group) >= BATCH_FILES or size + item.expected.size > BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += item.expected.size
    if group:
        yield group


@dataclass
class _Pending:
    item: CopyItem
    folder: int = -1  # the target's folder, opened under its root
    outcome: CopyOutcome | None = None
    mode: int = 0o644  # of the copy and its sidecar
    data: StagedFile | None = None  # verified, awaiting publication
    durable: bool = False  # `data` already fsync'ed by its worker
    sidecar: StagedFile | None = None


def _copy_group(
    items: list[CopyItem], on_bytes: OnBytes | None, workers: int, guard: Guard | None, file_mode: int | None
) -> list[CopyOutcome]:
    """Open every target folder, stage and verify every file (in parallel), make them durable
    together, then publish."""
    pending = [_Pending(item) for item in items]
    with Folders() as folders:
        swept: set[int] = set()
        for entry in pending:
            _open_folder(entry, folders, swept)
        todo = [e for e in pending if e.outcome is None]
        try:
            if workers > 1 and len(todo) > 1:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy") as pool:
                    list(pool.map(lambda entry: _stage(entry, on_bytes, file_mode), todo))
            else:
                for entry in todo:
                    _stage(entry, on_bytes, file_mode)
            waiting = [s for e in todo for s in (None if e.durable else e.data, e.sidecar) if s is not None]
            by_syncfs = sync_staged(waiting, len(waiting) >= SYNCFS_FROM)
            for entry in todo:
                _publish(entry, guard)
            sync_folder_fds(sorted(swept), by_syncfs)
            _hold_displaced(todo, folders.moved())
        finally:
            for entry in todo:
                for leftover in (entry.data, entry.sidecar):
                    if leftover is not None and leftover.fd >= 0:
                        leftover.discard()
    outcomes = [entry.outcome for entry in pending]
    assert None not in outcomes, "every staged file is settled by _publish"
    return outcomes  # type: ignore[return-value]


def _open_folder(entry: _Pending, folders: Folders, swept: set[int]) -> None:
    """The target's folder under its root (made if missing), swept of dead writers' temporaries;
    or the outcome that holds the file."""
    target = entry.item.target
    if len(os.fsencode(target.name)) + _LONGEST_SUFFIX > NAME_MAX:
        entry.outcome = CopyOutcome.BAD_NAME  # no room for its sidecar's name
        return
    try:
        entry.folder = folders.get(entry.item.root or nearest_folder(target.parent), target.parent, create=True)
    except NotAFolderError:
        entry.outcome = CopyOutcome.TARGET_CONFLICT  # a file sits where its folder must be
        return
    except UnsafePathError:
        entry.outcome = CopyOutcome.UNSAFE_PATH
        return
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        entry.outcome = CopyOutcome.BAD_NAME
        return
    if entry.folder not in swept:
        sweep(entry.folder)
        swept.add(entry.folder)


def _stage(entry: _Pending, on_bytes: OnBytes | None, file_mode: int | None) -> None:
    """Write the temporary copy and re-hash it (verifying reads the destination, never the source
    again), and stage the sidecar; or settle the outcome early. Publication waits for durability."""
    source, target, expected, kind, _, identity = entry.item
    line = _sidecar_bytes(entry.item)
    try:
        existing = os.stat(target.name, dir_fd=entry.folder, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        entry.outcome = _existing_outcome(entry.folder, target, expected)
        entry.mode = file_mode if file_mode is not None else stat.S_IMODE(existing.st_mode) & ~_SPECIAL_BITS
    elif not _stage_copy(entry, source, identity, on_bytes, file_mode):
        return
    if kind is not None and entry.outcome in (None, CopyOutcome.ALREADY_SYNCED):
        try:
            current = sidecars.read_sidecar_bytes(target, kind, entry.folder)
        except BadSidecar:
            current = None  # replaced below: a rename never follows what sits at the name
        if current != line:
            entry.sidecar = StagedFile.create_in(entry.folder, sidecars.sidecar_path(target, kind))
            entry.sidecar.write(line)
            os.fchmod(entry.sidecar.fd, entry.mode)


def _stage_copy(
    entry: _Pending, source: Path, identity: Identity | None, on_bytes: OnBytes | None, file_mode: int | None
) -> bool:
    """Copy the planned source into a new temporary and verify it; False when settled otherwise."""
    expected, target = entry.item.expected, entry.item.target
    try:
        src, st = open_source(source, identity)
    except HeldFile as held:
        entry.outcome = CopyOutcome(held.reason)
        return False
    try:
        if st.st_size != expected.size:
            entry.outcome = CopyOutcome.NOT_VERIFIED  # changed since it was hashed
            return False
        entry.mode = file_mode if file_mode is not None else stat.S_IMODE(st.st_mode) & ~_SPECIAL_BITS
        entry.data = StagedFile.create_in(entry.folder, target)
        entry.data.copy_from(src, expected.size + 1, on_bytes)
        os.fchmod(entry.data.fd, entry.mode)  # before it has a public name
    except OSError as err:
        raise RefusedError(f"cannot copy {source} to {target}: {err.strerror}") from err
    finally:
        os.close(src)
    # BLAKE3 alone proves the bytes equal those hashed before; their MD5 then is expected.md5.
    if not _same_content(hash_fd(entry.data.fd, False, None, entry.data.path), expected):
        entry.data.discard()
        entry.data, entry.outcome = None, CopyOutcome.NOT_VERIFIED
        return False
    if expected.size >= THREADED_HASH_FROM:
        # A big file's own fsync overlaps the other workers; small ones share one syncfs.
        os.fsync(entry.data.fd)
        entry.durable = True
    return True


def _sidecar_bytes(item: CopyItem) -> bytes:
    if item.sidecar_kind is None:
        return b""
    digest = item.expected.md5 if item.sidecar_kind == "md5" else item.expected.blake3
    if digest is None:
        raise IntegrityError(f"cannot write md5 sidecar for {item.target}: no MD5 known for {item.source}")
    return sidecars.sidecar_line(item.sidecar_kind, digest, item.target.name).encode("utf-8")


def _publish(entry: _Pending, guard: Guard | None) -> None:
    """Link the verified, durable temporary file to its final name (never replacing), then the sidecar."""
    target, expected = entry.item.target, entry.item.expected
    if entry.data is not None:
        if guard is not None:
            guard()
        hook("before_publish", path=target, source=entry.item.source)
        try:
            entry.data.link_to(target.name)
            entry.outcome = CopyOutcome.COPIED
            hook("published", path=target)
        except FileExistsError:  # someone published first: compare, never replace
            entry.outcome = _existing_outcome(entry.folder, target, expected)
        entry.data.discard()
    if entry.sidecar is not None:
        if entry.outcome in (CopyOutcome.COPIED, CopyOutcome.ALREADY_SYNCED):
            entry.sidecar.replace(sidecars.sidecar_path(target, entry.item.sidecar_kind).name)
        else:
            entry.sidecar.discard()


def _hold_displaced(entries: list[_Pending], moved: set[int]) -> None:
    """A copy published into a folder swapped away meanwhile is not at its target: held."""
    for entry in entries:
        if entry.folder in moved and entry.outcome in (CopyOutcome.COPIED, CopyOutcome.ALREADY_SYNCED):
            entry.outcome = CopyOutcome.UNSAFE_PATH


def _same_content(got: Digests, expected: Digests) -> bool:
    return (got.size, got.blake3) == (expected.size, expected.blake3)


def _existing_outcome(folder: int, target: Path, expected: Digests) -> CopyOutcome:
    return CopyOutcome.ALREADY_SYNCED if holds(target, expected, folder) else CopyOutcome.TARGET_CONFLICT


def holds(path: Path, expected: Digests, folder_fd: int | None = None) -> bool:
    """True when `path` (its name in `folder_fd`, when given) is a regular file, not a symlink,
    with the expected size and BLAKE3."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path.name if folder_fd is not None else path, flags, dir_fd=folder_fd)
    except FileNotFoundError:
        return False
    except OSError as err:
        if err.errno == errno.ELOOP:  # a symlink is never our file
            return False
        raise IntegrityError(f"cannot read {path}: {err.strerror}") from err
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != expected.size:
            return False
        return _same_content(hash_fd(fd, False, None, path), expected)
    finally:
        os.close(fd)


def __getattr__(name: str) -> object:
    """The moves' API, re-exported from `core.moves` (imported lazily: it builds on this module)."""
    if name in ("MoveItem", "MoveOutcome", "move_original", "move_originals"):
        from dropsync_dagster.core.integrity import moves

        return getattr(moves, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
