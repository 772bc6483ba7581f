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
is not moved back (the name is taken): the new file goes through the run, the quarantined one
stays for a person to compare (nothing is deleted on a guess about bytes that may change).

A kill inside a move can leave one file at both names, or stray sidecars (moves.py links or
copies, places the sidecars, then unlinks the old names: into quarantine the data name first,
so the drop never keeps the file without the `.md5` it fails). Such a move is finished before
planning: a new sidecar at the drop's place makes it the move back's (`due`); otherwise it was
the move into quarantine, and the drop's name of the quarantined file goes (`finish_cut_moves`).
Every removal and move re-checks the run's claim (`guard`).
"""

from __future__ import annotations

import errno
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from dropsync_dagster.core.drops.reads import identity_of
from dropsync_dagster.core.errors import UnsafePathError
from dropsync_dagster.core.fs.confined import Folders
from dropsync_dagster.core.integrity import sidecars
from dropsync_dagster.core.integrity.moves import MoveItem, MoveOutcome, move_originals
from dropsync_dagster.core.integrity.publish import Guard
from dropsync_dagster.core.integrity.sidecars import SIDECAR_KINDS, BadSidecar
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.stewardship.quarantine import RETURNED, Quarantined, note_path, quarantined
from dropsync_dagster.core.status.files import FileDoc


class Returned(NamedTuple):
    """An original back in its drop, and the quarantined sidecars its new ones superseded."""

    relpath: str
    superseded: dict[str, str]  # kind -> the digest the removed sidecar said


def due(root: Path | None, drop: str, drop_path: Path) -> list[Quarantined]:
    """Quarantined originals of `drop` whose place in the drop is free (or holds the same file: a
    move back cut short) and has a new sidecar."""
    return [q for q in quarantined(root, drop)
            if (not os.path.lexists(drop_path / q.note.relpath) or _shared_inode(drop_path / q.note.relpath, q.path))
            and any(_new_sidecar(drop_path / q.note.relpath, q.path, kind) for kind in SIDECAR_KINDS)]


def finish_cut_moves(root: Path | None, drop: str, drop_path: Path, guard: Guard | None = None) -> list[str]:
    """Finish each move into quarantine that a kill cut short: unless the drop has a new sidecar
    at the original's place (a correction: the move back's, see `due`), a drop name still holding
    the quarantined file itself is unlinked. Sidecars a kill left in the drop stay: they are the
    collaborator's (the same bytes are in quarantine), and they keep a re-delivered file of the
    same name checked against them. The relative paths finished."""
    finished = []
    for q in quarantined(root, drop):
        home = drop_path / q.note.relpath
        shared = _shared_inode(home, q.path)
        if shared is None or any(_new_sidecar(home, q.path, k) for k in SIDECAR_KINDS):
            continue
        if guard is not None:
            guard()
        with Folders() as folders:
            try:
                folder = folders.get(drop_path, home.parent)
                now = os.stat(home.name, dir_fd=folder, follow_symlinks=False)
            except (UnsafePathError, FileNotFoundError):
                continue  # its folder became a link, or the name went, since: nothing of ours is there
            if (now.st_dev, now.st_ino) == shared:
                os.unlink(home.name, dir_fd=folder)
                finished.append(q.note.relpath)
    return finished


def _shared_inode(home: Path, held: Path) -> tuple[int, int] | None:
    """(device, inode) when the drop's name `home` and the quarantine name `held` are one regular
    file (not a link); None otherwise."""
    try:
        there, ours = os.lstat(home), os.lstat(held)
    except (FileNotFoundError, NotADirectoryError):
        return None  # nothing at the drop's name, or taken out of quarantine by hand meanwhile
    same = stat.S_ISREG(there.st_mode) and (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino)
    return (there.st_dev, there.st_ino) if same else None


def _new_sidecar(home: Path, held: Path, kind: sidecars.SidecarKind) -> bool:
    """True when the drop has a sidecar of `kind` at `home` that the quarantined one does not equal."""
    try:
        arrived = sidecars.read_sidecar_bytes(home, kind)
    except BadSidecar:
        return False  # a link or FIFO at its name is no correction
    return arrived is not None and arrived != sidecars.read_sidecar_bytes(held, kind)


def return_due(root: Path | None, drop: str, drop_path: Path, guard: Guard | None = None) -> list[Returned]:
    """Move every due original back to its place in the drop. The caller holds the drop's claim;
    `guard` re-checks it right before each sidecar removal and each move."""
    if root is None:
        return []
    returned = []
    for q in due(root, drop, drop_path):
        home = drop_path / q.note.relpath
        try:
            st = os.lstat(q.path)
        except FileNotFoundError:
            continue  # taken out of quarantine by hand since it was listed
        if guard is not None:
            guard()
        superseded = _remove_superseded(root, q.path, home)
        expected = Digests(size=q.note.size, blake3=q.note.actual["blake3"], md5=q.note.actual.get("md5"))
        (outcome,) = move_originals([MoveItem(q.path, home, expected, identity_of(st), root, drop_path)], guard=guard)
        if outcome is MoveOutcome.MOVED:
            os.unlink(note_path(q.path))
            _prune(q.path.parent, root / drop)
            returned.append(Returned(q.note.relpath, superseded))
    return returned


def _remove_superseded(root: Path, held: Path, home: Path) -> dict[str, str]:
    """Remove the quarantined sidecars of the kinds the drop now has at `home`; their digests."""
    removed = {}
    with Folders() as folders:
        folder = folders.get(root, held.parent)
        for kind in SIDECAR_KINDS:
            # Anything at the drop's sidecar name supersedes ours: the move back never writes over it.
            if not os.path.lexists(sidecars.sidecar_path(home, kind)) or sidecars.read_sidecar_bytes(held, kind, folder) is None:
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
        "state": RETURNED, "returned_at": now, "superseded": r.superseded}) for r in returned]
