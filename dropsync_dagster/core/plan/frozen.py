"""The frozen plan on disk: JSON Lines under its id (`plans/<plan_id>.jsonl`: a header line with
every field but the entries, then one entry per line), and the drop's current plan named by a
small document (`drop_manifest.json`). A plan is parsed once per process and streamed entry by
entry, so a 100,000-file plan is never one 90 MiB string in memory."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.model import Plan, PlanEntry
from dropsync_dagster.core.result_files import ParsedFiles, drop_folder, one_line, write_atomically

T = TypeVar("T")

MANIFEST = "drop_manifest"  # the asset whose result the plan is

PARSED_PLANS = ParsedFiles[Plan](size=2)  # a run works from one plan; a dry run may hold the next
PLAN_GRACE_SECONDS = 600.0  # younger plans than this are never pruned: someone may be writing or reading them


class CurrentPlan(BaseModel):
    """`drop_manifest.json`: which frozen plan is the drop's latest, and where its entries are."""

    drop: str
    plan_id: str
    created_at: str
    entries: int
    plan: str  # the JSON Lines file, relative to the drop's folder


def plan_path(state_dir: Path, drop: str, plan_id: str) -> Path:
    """The JSON Lines file of plan `plan_id`."""
    return drop_folder(state_dir, drop) / "plans" / f"{plan_id}.jsonl"


def current_path(state_dir: Path, drop: str) -> Path:
    """The document naming the drop's current plan."""
    return drop_folder(state_dir, drop) / f"{MANIFEST}.json"


def write_plan(state_dir: Path, plan: Plan) -> Path:
    """Freeze `plan` under its id, then make it the drop's current plan; returns its file."""
    path = plan_path(state_dir, plan.drop, plan.plan_id)
    header = plan.model_dump_json(exclude={"entries"})
    lines = (line for chunk in ([header], (e.model_dump_json() for e in plan.entries)) for line in chunk)
    try:
        write_atomically(state_dir, path, (f"{line}\n" for line in lines), "the frozen plan")
        current = CurrentPlan(drop=plan.drop, plan_id=plan.plan_id, created_at=plan.created_at,
                              entries=len(plan.entries), plan=str(path.relative_to(path.parent.parent)))
        write_atomically(state_dir, current_path(state_dir, plan.drop), [current.model_dump_json(indent=1)],
                         "the current plan")
    except DropsyncError as exc:
        raise DropsyncError(f"{plan.drop}: {exc}") from exc
    PARSED_PLANS.put(path, plan)
    return path


def prune_plans(state_dir: Path, drop: str, keep_seconds: float = PLAN_GRACE_SECONDS) -> list[Path]:
    """Remove the drop's frozen plans (and writers' temporaries) other than its current one that
    are older than `keep_seconds`: a real run calls this once it holds the drop, so a plan another
    process may still be writing or reading is spared. The files removed."""
    folder = drop_folder(state_dir, drop) / "plans"
    try:
        keep = {plan_path(state_dir, drop, current_plan_id(state_dir, drop)).name}
    except DropsyncError:  # never planned, or its current-plan document is damaged: this run's plan
        return []  # replaces that document; until then no plan is known to be unused
    removed: list[Path] = []
    if folder.is_symlink():  # never remove files through a link, wherever it leads
        return removed
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    cutoff = time.time() - keep_seconds
    for entry in entries:
        if entry.name in keep or not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime > cutoff:
            continue
        if entry.name.endswith(".jsonl") or entry.name.endswith(".tmp"):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def current_plan_id(state_dir: Path, drop: str) -> str:
    """The id of the drop's current plan (the last `drop_manifest` wrote); one line when none."""
    path = current_path(state_dir, drop)
    try:
        return CurrentPlan.model_validate_json(path.read_bytes()).plan_id
    except FileNotFoundError:
        raise DropsyncError(f"{drop}: no plan at {path}; materialise {MANIFEST} first") from None
    except ValidationError as exc:
        raise DropsyncError(f"{drop}: {path} is not valid: {one_line(exc)}; materialise {MANIFEST} again") from None


def current_plan(state_dir: Path, drop: str) -> Plan | None:
    """The drop's current plan; None when the drop was never planned."""
    if not current_path(state_dir, drop).exists():
        return None
    return read_plan(state_dir, drop, current_plan_id(state_dir, drop))


def read_plan(state_dir: Path, drop: str, plan_id: str) -> Plan:
    """Plan `plan_id` of `drop`, parsed at most once per process; one line when missing or invalid."""
    path = plan_path(state_dir, drop, plan_id)
    try:
        return PARSED_PLANS.get(path, _parse)
    except FileNotFoundError:
        raise DropsyncError(f"{drop}: plan {plan_id} is not in {path.parent}; materialise {MANIFEST} again") from None


def _parse(path: Path) -> Plan:
    """Header first, then the entries streamed line by line; the entries are validated once each."""
    with path.open("rb") as lines:
        header = _valid(path, 1, lambda: Plan.model_validate({**json.loads(next(lines, b"{}")), "entries": []}))
    return header.model_copy(update={"entries": list(iter_entries(path))})


def iter_entries(path: Path) -> Iterator[PlanEntry]:
    """The entries of a frozen plan file, one at a time (its header skipped), each validated."""
    with path.open("rb") as lines:
        next(lines, None)
        for number, line in enumerate(lines, 2):
            yield _valid(path, number, lambda: PlanEntry.model_validate_json(line))


def _valid(path: Path, number: int, parse: Callable[[], T]) -> T:
    """`parse()`, or one line naming the plan file, the line and the first problem."""
    try:
        return parse()
    except ValidationError as exc:
        why = one_line(exc)
    except ValueError as exc:  # not JSON at all
        why = str(exc)
    raise DropsyncError(f"the frozen plan {path} is not valid at line {number}: {why}; materialise {MANIFEST} again")
