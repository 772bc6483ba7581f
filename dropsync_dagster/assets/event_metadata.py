"""Dagster metadata for plans and results: counts, and the first rows of each table."""

from __future__ import annotations

import warnings
import dagster as dg

from dropsync_dagster.core.held import HeldFile
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.report import copy_plan_rows, lineage_lines, move_plan_rows, plan_rows
from dropsync_dagster.core.status.store import DropDoc
from dropsync_dagster.core.status.files import FileDoc
from dropsync_dagster.partitions import drops

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


def plan_metadata(plan: Plan) -> dict[str, object]:
    """The dry-run tables of the old tool, plus counts by reason (the IO manager adds the plan file's path)."""
    return {
        "files": len(plan.entries),
        **counts_metadata(plan.counts(), "reason/"),
        "plan": markdown_table(plan_rows(plan)),
        # The copy and move plans as lists of `file → where · action`: two paths a row fit no table in the pane.
        "copy_plan": markdown_list([f"{r['file']} → {r['target']} · {r['action']}" for r in copy_plan_rows(plan)]),
        "move_plan": markdown_list([f"{r['file']} → {r['processed']} · {r['action']}" for r in move_plan_rows(plan, short=True)]),
    }


PER_DROP = "Evaluated per drop: each result belongs to the drop's partition and names it (metadata `drop`)."


def drop_check(name: str, asset: str, description: str, *, blocking: bool = True) -> dg.AssetCheckSpec:
    """A check evaluated per drop: its results are recorded against the drop's partition (and
    name it in their `drop` metadata), so a check's history says which drop each result was for."""
    with warnings.catch_warnings():
        # Partitioned checks are a preview in Dagster 1.13 (and what the UI shows per partition): known, chosen.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, partitions_def=drops,
                                 description=f"{description} {PER_DROP}")


def check_result(name: str, problems: list[str], warnings: list[str] | None = None, **metadata: object) -> dg.AssetCheckResult:
    """Passes when there are neither `problems` nor `warnings`; problems fail it (ERROR, which
    blocks a blocking check), warnings alone fail it with WARN. The first ones are listed."""
    warnings = warnings or []
    listed = "\n".join(f"- {p}" for p in (problems or warnings)[:SHOWN_ROWS]) or "none"
    return dg.AssetCheckResult(
        check_name=name,
        passed=not problems and not warnings,
        severity=dg.AssetCheckSeverity.ERROR if problems or not warnings else dg.AssetCheckSeverity.WARN,
        metadata={"problems": dg.MetadataValue.md(listed), "problem_count": len(problems),
                  "warning_count": len(warnings), **metadata},
    )


def held_metadata(held: list[HeldFile]) -> dict[str, object]:
    """The files held back so far: a count, and a table of the first ones with the reason and,
    where digests tell why, the expected and actual ones (two columns: it fits the pane)."""
    rows = [{"file": h.file, "reason": (f"{h.reason}: expected {h.expected}, actual {h.actual}" if h.expected else h.reason)
             + (f" · state quarantined at {h.quarantined}" if h.quarantined else "")}
            for h in held]
    return {"held_files": len(held), "held_back": markdown_table(rows) if rows else dg.MetadataValue.md("_none held back_")}


def markdown_list(lines: list[str], limit: int = SHOWN_ROWS) -> dg.MarkdownMetadataValue:
    """A bullet list of the first `limit` lines (wraps in a narrow pane, unlike a wide table)."""
    shown = [f"- {line}" for line in lines[:limit]] or ["_none_"]
    more = [f"\n_{len(lines) - limit} more in the JSON results_"] if len(lines) > limit else []
    return dg.MetadataValue.md("\n".join(shown + more))


def drop_state_metadata(doc: DropDoc, plan: Plan, lineage: list[FileDoc]) -> dict[str, object]:
    """The drop's status document and its files' lineage, as the UI shows them on the last step."""
    return {
        "drop_status": doc.status,
        "owner_run": dg.MetadataValue.dagster_run(doc.owner) if doc.owner else "",
        "failure_count": doc.failure_count,
        "last_error": doc.last_error or "",
        "status_counts": markdown_table([{"outcome": k, "files": str(v)} for k, v in sorted(doc.counts.items())]),
        "lineage": markdown_list(lineage_lines(plan, lineage)),
        "lineage_command": dg.MetadataValue.md(
            f"`dropsync lineage PATH` (a file's drop, repository or processed path) prints a file's whole "
            f"lineage document; `dropsync status {plan.drop}` this status document."
        ),
    }


def mib_per_s(nbytes: int, seconds: float) -> float:
    """Throughput in MiB/s, rounded to one decimal: the one unit every step reports."""
    return round(nbytes / 2**20 / max(seconds, 1e-9), 1)


def tally(values: list[str]) -> dict[str, int]:
    """Counts of equal values, e.g. outcomes per file."""
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def transfer_metadata(files: int, counts: dict[str, int], prefix: str, nbytes: int, seconds: float) -> dict[str, object]:
    """Counts, bytes and throughput of a step that read or wrote file contents (the IO manager adds
    the result file's path, `result_json`)."""
    return {
        "files": files,
        **counts_metadata(counts, prefix),
        "bytes": nbytes,
        "MiB_per_s": mib_per_s(nbytes, seconds),
    }
