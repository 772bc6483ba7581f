"""Quarantine: an original held for an integrity reason leaves the drop for
`<DROPSYNC_QUARANTINE_DIR>/<drop key>/<relative path>`, with its sidecars and a JSON note beside
it saying why (`<file>.quarantine.json`). It is still a held file of its drop: nothing counts as
failed, and it comes back when a corrected sidecar arrives (see quarantine_return.py).

Only `md5_mismatch` qualifies: the file was read whole and its bytes are known (BLAKE3, MD5), so
the move can be identity-checked and, across filesystems, verified; its sidecar disagrees with
them. `changed_after_copy` and `changed_since_plan` name a file that is being written: moving it
could carry a writer's later bytes into quarantine behind the note's digests, and the next run
plans it again anyway. `bad_sidecar`, `unreadable`, `unsafe_path` and `bad_name` files were never
read (no digest to verify a move against), and `not_verified` is a failed read or copy that the
next run retries in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.fs.confined import Folders
from dropsync_dagster.core.fs.staging import write_atomic_in
from dropsync_dagster.core.integrity.moves import MoveItem, MoveOutcome, move_originals
from dropsync_dagster.core.integrity.publish import Guard
from dropsync_dagster.core.model import Digests, Plan, Reason
from dropsync_dagster.core.results import ChecksumsResult, FileMove
from dropsync_dagster.core.status.files import FileDoc

QUARANTINE_REASONS = frozenset({Reason.MD5_MISMATCH})
NOTE_SUFFIX = ".quarantine.json"
QUARANTINED = "quarantined"  # `quarantine.state` of a file document while its original is there
RETURNED = "returned"  # ... once it went back into its drop


class QuarantineNote(BaseModel):
    """Why an original sits in quarantine: the JSON note beside it (and in its file document)."""

    model_config = ConfigDict(frozen=True)

    drop: str
    relpath: str  # drop-relative: where it came from, and where it goes back
    source: str  # its absolute path in the drop
    reason: Reason
    expected: dict[str, str]  # what its sidecar said, by algorithm
    actual: dict[str, str]  # what its bytes hash to, by algorithm
    size: int
    plan_id: str
    quarantined_at: str  # ISO timestamp, UTC


class Quarantined(NamedTuple):
    """One original in quarantine and its note."""

    path: Path
    note: QuarantineNote


def quarantine_path(root: Path, drop: str, relpath: str) -> Path:
    """Where an original of `drop` sits in quarantine: its drop-relative path under the drop's key."""
    return root / drop / relpath


def note_path(path: Path) -> Path:
    """The note beside a quarantined original."""
    return path.with_name(path.name + NOTE_SUFFIX)


def quarantine_held(plan: Plan, checksums: ChecksumsResult, files: dict[str, FileMove], root: Path | None,
                    guard: Guard | None = None) -> dict[str, FileMove]:
    """Move the originals `files` holds for a quarantine reason (and their sidecars) into `root`
    with a note each; `files` with each moved one's `quarantined` set. `root` None: unchanged."""
    if root is None:
        return files
    picked: list[tuple[MoveItem, QuarantineNote]] = []
    now = datetime.now(UTC).isoformat()
    for entry in plan.entries:
        move, checksum = files.get(entry.relpath), checksums.files.get(entry.relpath)
        if move is None or move.outcome != "held" or move.reason not in QUARANTINE_REASONS:
            continue
        if checksum is None or checksum.digests is None or checksum.identity is None:
            continue  # never read whole: no digest to verify a move against
        dest = quarantine_path(root, plan.drop, entry.relpath)
        item = MoveItem(Path(entry.source), dest, checksum.digests, checksum.identity, Path(plan.drop_path), root)
        note = _note(plan, entry.relpath, entry.source, move.reason, checksum.digests, checksum.expected_md5, now)
        picked.append((item, note))
    if not picked:
        return files
    # Each note is written before its file moves: killed in between, a run leaves a note without a
    # file (ignored, and rewritten by the next quarantine), never a file in quarantine with no note.
    fresh = [_note_first(root, item.dest, note) for item, note in picked]
    out = dict(files)
    for (item, note), wrote, outcome in zip(picked, fresh, move_originals([item for item, _ in picked], guard=guard, data_first=True)):
        if outcome is MoveOutcome.MOVED:
            out[note.relpath] = out[note.relpath].model_copy(update={"quarantined": str(item.dest)})
        elif wrote:
            remove_note(root, item.dest)  # it stayed in the drop: no note names it
    return out


def _note_first(root: Path, dest: Path, note: QuarantineNote) -> bool:
    """Write `note` for the original about to move to `dest`; False (nothing written) when
    anything is at `dest` already: an earlier quarantine's file, this one's move cut short (its
    note written before), or a file no note may be put beside."""
    if os.path.lexists(dest):
        return False
    write_note(root, dest, note)
    return True


def _note(plan: Plan, relpath: str, source: str, reason: Reason, digests: Digests, expected_md5: str | None,
          now: str) -> QuarantineNote:
    """The note of one original: what its sidecar said against what its bytes hash to."""
    actual = {"md5": digests.md5, "blake3": digests.blake3} if digests.md5 else {"blake3": digests.blake3}
    return QuarantineNote(drop=plan.drop, relpath=relpath, source=source, reason=reason,
                          expected={"md5": expected_md5 or ""}, actual=actual, size=digests.size,
                          plan_id=plan.plan_id, quarantined_at=now)


def write_note(root: Path, path: Path, note: QuarantineNote) -> None:
    """Write the note beside `path`, through its folder made under `root` (atomic, durable)."""
    with Folders() as folders:
        folder = folders.get(root, path.parent, create=True)
        write_atomic_in(folder, note_path(path), note.model_dump_json(indent=1).encode())


def remove_note(root: Path, path: Path) -> None:
    """Remove the note beside `path`, through its folder opened under `root`."""
    with Folders() as folders:
        os.unlink(note_path(path).name, dir_fd=folders.get(root, path.parent))


def quarantined(root: Path | None, drop: str) -> list[Quarantined]:
    """The originals of `drop` in quarantine that have a note, by relative path."""
    if root is None:
        return []
    found = []
    for note in _notes(root / drop):
        path = note.with_name(note.name.removesuffix(NOTE_SUFFIX))
        if os.path.lexists(path):  # a note alone: its file went back, or had not moved yet (a kill)
            found.append(Quarantined(path, _read_note(note)))
    return sorted(found, key=lambda q: q.note.relpath)


def _read_note(note: Path) -> QuarantineNote:
    """A note as written by `write_note`; a damaged one is a DropsyncError naming it."""
    try:
        return QuarantineNote.model_validate_json(note.read_bytes())
    except ValidationError as exc:
        raise DropsyncError(f"quarantine note {note} is damaged ({exc.errors()[0]['msg']}); "
                            "fix it by hand: it says where the file beside it came from") from exc


def _notes(top: Path) -> Iterator[Path]:
    """Every note below `top` (nothing when `top` does not exist); folder links are not followed."""
    stack = [top]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.name.endswith(NOTE_SUFFIX) and entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def quarantine_docs(items: list[Quarantined]) -> list[FileDoc]:
    """File-document patches for originals now in quarantine: `quarantine.state` is `quarantined`,
    with where, why and the digests (what the alert sensor and reconcile query)."""
    return [FileDoc(relpath=q.note.relpath, quarantine={  # type: ignore[call-arg]  (FileDoc keeps extra fields)
        "state": QUARANTINED, "path": str(q.path), "note": str(note_path(q.path)), "returned_at": None,
        **q.note.model_dump(mode="json", include={"reason", "expected", "actual", "quarantined_at", "plan_id"})})
            for q in items]

