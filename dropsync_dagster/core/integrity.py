"""Verified copies published without overwrite, and moves of originals that never lose a byte."""

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


from dropsync_dagster.core import sidecars
from dropsync_dagster.core.errors import IntegrityError, RefusedError
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.hashing import DEFAULT_WORKERS, THREADED_HASH_FROM, OnBytes, hash_fd, open_read
from dropsync_dagster.core.sidecars import SidecarKind, StagedFile
from dropsync_dagster.core.testhooks import hook

# Called right before each irreversible action; raises RefusedError once the run lost its claim.
Guard = Callable[[], None]

# Files staged before one `syncfs`: each holds two descriptors until published.
BATCH_FILES = max(16, min(1024, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256) // 4))
BATCH_BYTES = 1024 * 1024 * 1024  # ... and dirty pages waiting for it
SYNCFS_FROM = 4  # fewer staged files than this are fsync'ed one by one


class CopyOutcome(StrEnum):
    """What `copy_verified` did with one file."""

    COPIED = "copied"
    ALREADY_SYNCED = "already_synced"  # identical content was already at the target
    TARGET_CONFLICT = "target_conflict"  # different content is there; it was not touched
    NOT_VERIFIED = "not_verified"  # the copied bytes did not match the expected digests


class MoveOutcome(StrEnum):
    """What `move_original` did with one original."""

    MOVED = "moved"
    EXISTS = "exists"  # different content already sits at the destination


class CopyItem(NamedTuple):
    """One file for `copy_verified_batch`."""

    source: Path
    target: Path
    expected: Digests
    sidecar_kind: SidecarKind | None


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
) -> list[CopyOutcome]:
    """`copy_verified` for many files: copied and verified by `workers` threads, small files made
    durable by one `syncfs` per group (Linux; per-file fsync elsewhere). Outcomes follow `items`.
    `guard` is called right before each publish."""
    outcomes: list[CopyOutcome] = []
    for group in _groups(items):
        outcomes.extend(_copy_group(group, on_bytes, workers, guard))
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
    outcome: CopyOutcome | None = None
    data: StagedFile | None = None  # verified, awaiting publication
    durable: bool = False  # `data` already fsync'ed by its worker
    sidecar: StagedFile | None = None
    sidecar_final: Path | None = None


def _copy_group(items: list[CopyItem], on_bytes: OnBytes | None, workers: int, guard: Guard | None) -> list[CopyOutcome]:
    """Stage and verify every file (in parallel), make them durable together, then publish."""
    pending = [_Pending(item) for item in items]
    folders = sorted({item.target.parent for item in items})
    for folder in folders:
        sidecars.make_parents(folder)
    try:
        if workers > 1 and len(pending) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy") as pool:
                list(pool.map(lambda entry: _stage(entry, on_bytes), pending))
        else:
            for entry in pending:
                _stage(entry, on_bytes)
        waiting = [s for e in pending for s in (None if e.durable else e.data, e.sidecar) if s is not None]
        by_syncfs = sidecars.sync_staged(waiting, len(waiting) >= SYNCFS_FROM)
        for entry in pending:
            _publish(entry, guard)
        sidecars.sync_folders(folders, by_syncfs)
    finally:
        for entry in pending:
            for leftover in (entry.data, entry.sidecar):
                if leftover is not None and leftover.fd >= 0:
                    leftover.discard()
    outcomes = [entry.outcome for entry in pending]
    assert None not in outcomes, "every staged file is settled by _publish"
    return outcomes  # type: ignore[return-value]


def _stage(entry: _Pending, on_bytes: OnBytes | None) -> None:
    """Write the temporary copy and re-hash it (verifying reads the destination, never the source
    again), and stage the sidecar; or settle the outcome early. Publication waits for durability."""
    source, target, expected, kind = entry.item
    line = _sidecar_bytes(entry.item)
    if os.path.lexists(target):
        entry.outcome = _existing_outcome(target, expected)
    else:
        src = open_read(source)
        try:
            if os.fstat(src).st_size != expected.size:
                entry.outcome = CopyOutcome.NOT_VERIFIED  # changed since it was hashed
                return
            entry.data = StagedFile.create(target)
            entry.data.copy_from(src, expected.size + 1, on_bytes)
        except OSError as err:
            raise RefusedError(f"cannot copy {source} to {target}: {err.strerror}") from err
        finally:
            os.close(src)
        # BLAKE3 alone proves the bytes equal those hashed before; their MD5 then is expected.md5.
        if not _same_content(hash_fd(entry.data.fd, False, None, entry.data.path), expected):
            entry.data.discard()
            entry.data, entry.outcome = None, CopyOutcome.NOT_VERIFIED
            return
        if expected.size >= THREADED_HASH_FROM:
            # A big file's own fsync overlaps the other workers; small ones share one syncfs.
            os.fsync(entry.data.fd)
            entry.durable = True
    if kind is not None and entry.outcome in (None, CopyOutcome.ALREADY_SYNCED):
        path = sidecars.sidecar_path(target, kind)
        if not (path.is_file() and path.read_bytes() == line):
            entry.sidecar, entry.sidecar_final = StagedFile.create(path), path
            entry.sidecar.write(line)


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
            os.link(entry.data.path, target, follow_symlinks=False)
            entry.outcome = CopyOutcome.COPIED
            hook("published", path=target)
        except FileExistsError:  # someone published first: compare, never replace
            entry.outcome = _existing_outcome(target, expected)
        entry.data.discard()
    if entry.sidecar is not None:
        if entry.outcome in (CopyOutcome.COPIED, CopyOutcome.ALREADY_SYNCED):
            os.replace(entry.sidecar.path, entry.sidecar_final)
            entry.sidecar.close()
        else:
            entry.sidecar.discard()


def _same_content(got: Digests, expected: Digests) -> bool:
    return (got.size, got.blake3) == (expected.size, expected.blake3)


def _existing_outcome(target: Path, expected: Digests) -> CopyOutcome:
    return CopyOutcome.ALREADY_SYNCED if _holds(target, expected) else CopyOutcome.TARGET_CONFLICT


def _holds(path: Path, expected: Digests) -> bool:
    """True when `path` is a regular file (not a symlink) with the expected size and BLAKE3."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
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


def move_original(source: Path, dest: Path, expected: Digests) -> MoveOutcome:
    """Move one original and its `.md5`/`.blake3` sidecars to `dest` (see move_originals)."""
    return move_originals([(source, dest, expected)])[0]


def move_originals(moves: Sequence[tuple[Path, Path, Digests]], guard: Guard | None = None) -> list[MoveOutcome]:
    """Move originals and their sidecars, never overwriting; across filesystems each is copied,
    made durable and verified against its digests before the unlink. Outcomes follow `moves`.

    Every new name is made durable (one `syncfs` per filesystem) before any source is unlinked,
    and the unlinks once more at the end. A re-run after a crash finishes a half-done move.
    `guard` is called right before each original is linked and before the unlinks."""
    outcomes: list[MoveOutcome] = []
    linked: list[tuple[Path, Path, bool]] = []
    for source, dest, expected in moves:
        sidecars.make_parents(dest.parent)
        if guard is not None:
            guard()
        hook("before_move", path=source, dest=dest)
        outcome, needs_unlink = _link_original(source, dest, expected)
        outcomes.append(outcome)
        if outcome is MoveOutcome.MOVED:
            linked.append((source, dest, needs_unlink))
    if not linked:
        return outcomes
    sidecars.flush_filesystems(sorted({dest.parent for _, dest, _ in linked}))
    if guard is not None:
        guard()
    for source, dest, needs_unlink in linked:
        if needs_unlink:
            os.unlink(source)
        _move_sidecars(source, dest)
        hook("between_moves", path=source)
    sidecars.flush_filesystems(sorted({p for s, d, _ in linked for p in (s.parent, d.parent)}))
    return outcomes


def _link_original(source: Path, dest: Path, expected: Digests) -> tuple[MoveOutcome, bool]:
    """Give the original its new name; (outcome, whether the source name is still to unlink)."""
    if not os.path.lexists(source):
        # Crashed after the data moved but before its sidecars did.
        if not _holds(dest, expected):
            raise IntegrityError(f"original {source} is gone and {dest} does not hold it")
        return MoveOutcome.MOVED, False
    try:
        os.link(source, dest, follow_symlinks=False)
    except FileExistsError:
        same = os.path.samestat(os.lstat(source), os.lstat(dest))  # crashed between link and unlink
        if not (same or (_holds(dest, expected) and _holds(source, expected))):
            return MoveOutcome.EXISTS, False
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise RefusedError(f"cannot move {source} to {dest}: {err.strerror}") from err
        if not _copy_across(source, dest, expected):
            return MoveOutcome.EXISTS, False
    return MoveOutcome.MOVED, True


def _copy_across(source: Path, dest: Path, expected: Digests) -> bool:
    """Verified copy to another filesystem; True when `dest` now holds the original's bytes."""
    outcome = copy_verified(source, dest, expected, sidecar_kind=None)
    if outcome is CopyOutcome.NOT_VERIFIED:
        raise IntegrityError(f"original {source} no longer matches its recorded digests; not moved")
    if outcome is CopyOutcome.ALREADY_SYNCED:
        return _holds(source, expected)
    return outcome is CopyOutcome.COPIED


def _move_sidecars(source: Path, dest: Path) -> None:
    """Sidecars follow their original: kept byte for byte, or rewritten if the basename changes."""
    for kind in sidecars.SIDECAR_KINDS:
        old = sidecars.sidecar_path(source, kind)
        try:
            data = old.read_bytes()
        except FileNotFoundError:
            continue
        new = sidecars.sidecar_path(dest, kind)
        if dest.name != source.name:
            data = sidecars.sidecar_line(kind, sidecars.read_sidecar(source, kind) or "", dest.name).encode("utf-8")
        elif _link_unless_different(old, new, data):
            # A second name for the same inode: the unlink below frees nothing, which on ext4
            # is ~20x cheaper than writing a new sidecar and freeing the old one.
            os.unlink(old)
            continue
        sidecars.write_atomic(new, data, durable=False)
        os.unlink(old)


def _link_unless_different(old: Path, new: Path, data: bytes) -> bool:
    """Give sidecar `old` the name `new` too; False when it must be written instead (another
    filesystem, or a different sidecar already at `new`, which the caller replaces)."""
    try:
        os.link(old, new)
    except FileExistsError:
        return new.read_bytes() == data
    except OSError as err:
        if err.errno == errno.EXDEV:
            return False
        raise
    return True
