"""The old tool's tables as plain rows: plan, copy plan, move plan, LabKey update diffs and
planned creates. Shared by CLI and UI."""

from __future__ import annotations

import os

from dropsync_dagster.core.labkey.planning import create_rows, update_diff_rows
from dropsync_dagster.core.model import Plan, PlanEntry, Reason
from dropsync_dagster.core.status.files import FileDoc

# Matched files stopped for these reasons make `dropsync plan/sync` exit 1.
GATE_REASONS = frozenset(Reason) - {Reason.SKIPPED_NON_MATCH, Reason.ALREADY_SYNCED}


def copy_action(entry: PlanEntry) -> str:
    """`would_copy` or `would_skip:<reason>`."""
    if entry.reason is None:
        return "would_copy"
    return f"would_skip:{entry.reason}"


def move_action(entry: PlanEntry) -> str:
    """`would_move` or `would_skip:<reason>`, mirroring the copy gates."""
    if not entry.goes_ahead:
        return f"would_skip:{entry.reason}"
    if entry.processed_taken:
        return f"would_skip:{Reason.EXISTS}"
    return "would_move"


def plan_rows(plan: Plan) -> list[dict[str, str]]:
    """One row per file: variables, target, write action and reason."""
    return [
        {
            "file": e.relpath,
            "variables": " ".join(f"{k}={v}" for k, v in e.variables.items() if k != "today"),
            "target": e.target_relpath or "",
            "write_action": str(e.write_action),
            "reason": str(e.reason or ""),
        }
        for e in plan.entries
    ]


def copy_plan_rows(plan: Plan) -> list[dict[str, str]]:
    """One row per matched file: source, target, copy action."""
    return [
        {"file": e.relpath, "target": e.target_relpath or "", "action": copy_action(e)}
        for e in plan.entries
        if e.matched
    ]


def move_plan_rows(plan: Plan, short: bool = False) -> list[dict[str, str]]:
    """One row per matched file: source, destination (`short`: relative to the processed folder), action."""
    return [
        {"file": e.relpath, "processed": relative(e.processed, plan.processed_folder) if short else e.processed or "",
         "action": move_action(e)}
        for e in plan.entries
        if e.matched
    ]


def lineage_lines(plan: Plan, docs: list[FileDoc]) -> list[str]:
    """One line per file document: its target (relative to the repository), archive generation,
    LabKey row, and whether the original moved or why it stayed (full paths: `dropsync lineage`)."""
    lines = []
    for d in docs:
        where = [f"→ {relative(d.target, plan.repository_folder)}" if d.target else "→ not copied"]
        where += [f"archive g{d.archive.generation}"] if d.archive else []
        where += [f"LabKey row {d.labkey_row_id}"] if d.labkey_row_id is not None else []
        held = (d.model_extra or {}).get("held_reason")
        where.append("original moved" if d.processed else f"original in the drop ({held or 'not moved'})")
        lines.append(f"{d.relpath} {where[0]} · " + " · ".join(where[1:]))
    return lines


def relative(path: str | None, folder: str) -> str:
    """`path` relative to `folder` when inside it (the tables' width), else as given."""
    if not path:
        return ""
    inside = os.path.relpath(path, folder)
    return path if inside.startswith("..") else inside


def labkey_diff_rows(plan: Plan, max_rows: int | None = None) -> list[dict[str, str]]:
    """The dry-run LabKey update diffs: per row and field, `from`, `to`, `changes` (yes/no)."""
    return update_diff_rows(plan, max_rows)


def labkey_create_rows(plan: Plan, max_rows: int | None = None) -> list[dict[str, str]]:
    """The dry-run planned creates: one row per insert with its fields (none with skip_creates)."""
    return create_rows(plan, max_rows)


def stopped(plan: Plan) -> list[PlanEntry]:
    """Matched files stopped at a gate (what makes the CLI exit 1)."""
    stops = [e for e in plan.entries if e.matched and e.reason in GATE_REASONS]
    return stops + [e for e in plan.entries if e.goes_ahead and e.processed_taken]
