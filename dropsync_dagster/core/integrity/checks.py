"""Integrity checks over a drop's results; each returns the list of problems found (empty: pass)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from dropsync_dagster.core.integrity.hashing import hash_files
from dropsync_dagster.core.model import Plan, Reason
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, OriginalsResult


def target_problems(plan: Plan) -> list[str]:
    """Every planned target is unique and its path, read as text, lies inside the repository
    folder. What sits on disk is not the plan's: a link planted there later holds the file when
    it is written (`unsafe_path`), each write being confined when it happens."""
    targets = [e.target for e in plan.entries if e.goes_ahead and e.target]
    problems = [f"{t}: planned {n} times" for t, n in Counter(targets).items() if n > 1]
    root = os.path.normpath(plan.repository_folder) + os.sep
    problems += [f"{t}: outside {plan.repository_folder}" for t in targets if not os.path.normpath(t).startswith(root)]
    return problems


def copy_problems(copies: CopiesResult, checksums: ChecksumsResult) -> list[str]:
    """Re-hash every repository copy (and already-synced target) against its source digest."""
    done = {rel: c for rel, c in copies.files.items() if c.outcome in ("copied", "already_synced")}
    present = {rel: c for rel, c in done.items() if os.path.exists(c.target)}
    problems = [f"{c.target}: missing from the repository" for rel, c in done.items() if rel not in present]
    digests = hash_files([(Path(c.target), False) for c in present.values()])
    for rel, c in present.items():
        if digests[Path(c.target)].blake3 != checksums.files[rel].digests.blake3:
            problems.append(f"{c.target}: BLAKE3 differs from the source {rel}")
    return problems


def original_problems(plan: Plan, originals: OriginalsResult, checksums: ChecksumsResult) -> list[str]:
    """Every matched file is in exactly one place: in the drop (with a reason) or processed, intact."""
    problems: list[str] = []
    moved: list[tuple[str, Path]] = []
    for entry in plan.entries:
        if not entry.matched:
            continue
        in_drop = os.path.lexists(entry.source)
        move = originals.files.get(entry.relpath)
        if move is not None and move.outcome == "moved":
            if in_drop:
                problems.append(f"{entry.relpath}: moved but still in the drop")
            elif not os.path.exists(entry.processed):
                problems.append(f"{entry.relpath}: missing from both the drop and {entry.processed}")
            else:
                moved.append((entry.relpath, Path(entry.processed)))
        elif move is not None and move.quarantined:
            if in_drop or not os.path.lexists(move.quarantined):
                problems.append(f"{entry.relpath}: quarantined at {move.quarantined} but "
                                f"{'still in the drop' if in_drop else 'not there'}")
        elif not in_drop and entry.reason is not Reason.BAD_NAME:  # its path is shown escaped
            problems.append(f"{entry.relpath}: left the drop without a recorded move")
        elif move is None or move.reason is None and entry.reason is None:
            problems.append(f"{entry.relpath}: still in the drop with no reason")
    digests = hash_files([(p, False) for _, p in moved])
    for rel, path in moved:
        if digests[path].blake3 != checksums.files[rel].digests.blake3:
            problems.append(f"{rel}: processed copy {path} differs from its checksum")
    return problems
