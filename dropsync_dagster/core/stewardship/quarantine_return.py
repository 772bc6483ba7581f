"""Quarantined originals go back into their drop once a corrected sidecar arrived there.

A run of the drop, holding its claim, moves each quarantined original whose drop now has a
`.md5` (or `.blake3`) at the original's place that differs from the quarantined one back to that
place, before it plans: from then on the drop is as if the file had never left, and every gate
applies to it unchanged (synced when the new sidecar matches, quarantined again when not).
Moving it back, rather than planning from the quarantine folder, keeps one copy of each file in
exactly one place and the archive, the move and the checks reading only the drop.

The quarantined sidecar that the new one supersedes is removed first (its digest stays in the
note's `expected` and in the file document), so the move back, which never overwrites a data
file, cannot put the old sidecar over the new one. An original re-delivered under its own name
is not moved back (the name is taken): the new file goes through the run. When it holds the same
bytes as the quarantined one (BLAKE3 of the note), the quarantined copy, its sidecars and then its
note are removed, so the file is in one place; with other bytes, the quarantined one stays for a
person to compare.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from dropsync_dagster.core.drops.reads import HeldFile, identity_of, open_source
from dropsync_dagster.core.errors import IntegrityError, UnsafePathError
from dropsync_dagster.core.fs.confined import Folders
from dropsync_dagster.core.integrity.hashing import hash_fd
from dropsync_dagster.core.integrity import sidecars
from dropsync_dagster.core.integrity.moves import MoveItem, MoveOutcome, move_originals
from dropsync_dagster.core.integrity.sidecars import SIDECAR_KINDS, BadSidecar
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.stewardship.quarantine import RETURNED, Quarantined, note_path, quarantined
from dropsync_dagster.core.status.files import FileDoc


class Returned(NamedTuple):
    """An original back in its drop, and the quarantined sidecars its new ones superseded."""

    relpath: str
    superseded: dict[str, str]  # kind -> the digest the removed sidecar said
    how: str = "moved_back"  # or "redelivered": the drop got the same bytes again, the copy went


def due(root: Path | None, drop: str, drop_path: Path) -> list[Quarantined]:
    """Quarantined originals of `drop` whose place in the drop is free and has a new sidecar."""
    return [q for q in quarantined(root, drop)
            if not os.path.lexists(drop_path / q.note.relpath)
            and any(_new_sidecar(drop_path / q.note.relpath, q.path, kind) for kind in SIDECAR_KINDS)]


def _new_sidecar(home: Path, held: Path, kind: sidecars.SidecarKind) -> bool:
    """True when the drop has a sidecar of `kind` at `home` that the quarantined one does not equal."""
    try:
        arrived = sidecars.read_sidecar_bytes(home, kind)
    except BadSidecar:
        return False  # a link or FIFO at its name is no correction
    return arrived is not None and arrived != sidecars.read_sidecar_bytes(held, kind)


def return_due(root: Path | None, drop: str, drop_path: Path) -> list[Returned]:
    """Remove the quarantined copies of originals re-delivered byte for byte, then move every due
    original back to its place in the drop (the caller holds the drop's claim)."""
    if root is None:
        return []
    returned = _drop_redelivered(root, drop, drop_path)
    for q in due(root, drop, drop_path):
        home = drop_path / q.note.relpath
        try:
            st = os.lstat(q.path)
        except FileNotFoundError:
            continue  # taken out of quarantine by hand since it was listed
        superseded = _remove_superseded(root, q.path, home)
        expected = Digests(size=q.note.size, blake3=q.note.actual["blake3"], md5=q.note.actual.get("md5"))
        (outcome,) = move_originals([MoveItem(q.path, home, expected, identity_of(st), root, drop_path)])
        if outcome is MoveOutcome.MOVED:
            os.unlink(note_path(q.path))
            _prune(q.path.parent, root / drop)
            returned.append(Returned(q.note.relpath, superseded))
    return returned


def _drop_redelivered(root: Path, drop: str, drop_path: Path) -> list[Returned]:
    """Quarantined originals whose place in the drop holds a regular file of the same bytes: the
    quarantined copy goes (sidecars, data, and the note last, so no file is left without one)."""
    dropped = []
    for q in quarantined(root, drop):
        if not _same_bytes(drop_path, drop_path / q.note.relpath, q.note.size, q.note.actual["blake3"]):
            continue
        superseded = _remove_superseded(root, q.path, None)
        with Folders() as folders:
            folder = folders.get(root, q.path.parent)
            os.unlink(q.path.name, dir_fd=folder)
            os.unlink(note_path(q.path).name, dir_fd=folder)
        _prune(q.path.parent, root / drop)
        dropped.append(Returned(q.note.relpath, superseded, "redelivered"))
    return dropped


def _same_bytes(drop_path: Path, home: Path, size: int, blake3: str) -> bool:
    """True when `home`, reached inside the drop without leaving it, is a regular file of `size`
    bytes hashing to `blake3`. Anything else there (nothing, a link, a FIFO, other bytes, a read
    error) is not the quarantined file again, and the quarantined copy stays."""
    try:
        with Folders() as folders:
            fd, st = open_source(home, None, folders.get(drop_path, home.parent))
    except (FileNotFoundError, NotADirectoryError, UnsafePathError, HeldFile):
        return False
    try:
        return st.st_size == size and hash_fd(fd, False, None, home).blake3 == blake3
    except IntegrityError:
        return False
    finally:
        os.close(fd)


def _remove_superseded(root: Path, held: Path, home: Path | None) -> dict[str, str]:
    """Remove the quarantined sidecars of the kinds the drop now has at `home` (every kind when
    `home` is None); their digests."""
    removed = {}
    with Folders() as folders:
        folder = folders.get(root, held.parent)
        for kind in SIDECAR_KINDS:
            # Anything at the drop's sidecar name supersedes ours: the move back never writes over it.
            if home is not None and not os.path.lexists(sidecars.sidecar_path(home, kind)):
                continue
            if sidecars.read_sidecar_bytes(held, kind, folder) is None:
                continue
            try:
                removed[kind] = sidecars.read_sidecar(held, kind, folder) or ""
            except BadSidecar:
                removed[kind] = ""  # malformed: it could not have been right
            os.unlink(sidecars.sidecar_path(held, kind).name, dir_fd=folder)
    return removed


def _prune(folder: Path, top: Path) -> None:
    """Remove the folders from `folder` up to `top` that the return left empty."""
    while folder == top or top in folder.parents:
        try:
            os.rmdir(folder)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                return
            raise
        folder = folder.parent


def returned_docs(returned: list[Returned]) -> list[FileDoc]:
    """File-document patches: `quarantine.state` is `returned`, with when and what was superseded."""
    now = datetime.now(UTC).isoformat()
    return [FileDoc(relpath=r.relpath, quarantine={  # type: ignore[call-arg]  (FileDoc keeps extra fields)
        "state": RETURNED, "returned_at": now, "superseded": r.superseded, "how": r.how}) for r in returned]
