"""Dagster metadata for plans and results: counts, and the first rows of each table."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.report import copy_plan_rows, move_plan_rows, plan_rows

SHOWN_ROWS = 50


def markdown_table(rows: list[dict[str, str]], limit: int = SHOWN_ROWS) -> dg.MarkdownMetadataValue:
    """A markdown table of the first `limit` rows, saying how many were left out."""
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows[:limit]:
        lines.append("| " + " | ".join(str(row[h]).replace("|", "\\|") for h in header) + " |")
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more rows in the JSON result_")
    return dg.MetadataValue.md("\n".join(lines))


def counts_metadata(counts: dict[str, int], prefix: str) -> dict[str, int]:
    """One integer metadata entry per count, so the UI can plot them across partitions."""
    return {f"{prefix}{k}": v for k, v in sorted(counts.items())}


def plan_metadata(plan: Plan, path: Path) -> dict[str, object]:
    """The dry-run tables of the old tool, plus counts by reason and the full JSON's path."""
    return {
        "files": len(plan.entries),
        **counts_metadata(plan.counts(), "reason/"),
        "plan": markdown_table(plan_rows(plan)),
        "copy_plan": markdown_table(copy_plan_rows(plan)),
        "move_plan": markdown_table(move_plan_rows(plan)),
        "plan_json": dg.MetadataValue.path(str(path)),
    }


def check_result(name: str, problems: list[str], **metadata: object) -> dg.AssetCheckResult:
    """A check that passes when `problems` is empty; the first problems are listed."""
    listed = "\n".join(f"- {p}" for p in problems[:SHOWN_ROWS]) or "none"
    return dg.AssetCheckResult(
        check_name=name,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md(listed), "problem_count": len(problems), **metadata},
    )


def tally(values: list[str]) -> dict[str, int]:
    """Counts of equal values, e.g. outcomes per file."""
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def transfer_metadata(files: int, counts: dict[str, int], prefix: str, nbytes: int, seconds: float, path: Path) -> dict[str, object]:
    """Counts, bytes and throughput of a step that read or wrote file contents."""
    return {
        "files": files,
        **counts_metadata(counts, prefix),
        "bytes": nbytes,
        "MiB_per_s": round(nbytes / 2**20 / max(seconds, 1e-9), 1),
        "result_json": dg.MetadataValue.path(str(path)),
    }
