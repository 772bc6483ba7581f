"""Rich rendering for the CLI: the old tool's tables, run summaries, byte-progress bars.

File names, metadata values and server texts are untrusted: nothing printed is read as rich
markup or emoji codes (the consoles have both off), and `shown` makes control characters
visible, so a name cannot move the cursor, recolour or retitle the terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from dropsync_dagster.core import progress
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import LabKeyResult
from dropsync_dagster.core.plan.report import (
    copy_plan_rows,
    labkey_create_rows,
    labkey_diff_rows,
    move_plan_rows,
    plan_rows,
)


# C0 and C1 controls (ESC among them), DEL, bidirectional overrides, and the lone surrogates that
# stand for the bytes of a file name that is not UTF-8.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shown(value: object) -> str:
    """`value` as one line of text safe for a terminal: unsafe characters become `\\xNN` escapes
    (a byte of a non-UTF-8 name is shown as that byte). Used for every cell and message."""
    return _UNSAFE.sub(_escape, str(value))


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class _PlainConsole(Console):
    """A console that prints every text argument through `shown`, and never reads markup or emoji
    codes, so no caller can forget to escape a name."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(highlight=False, markup=False, emoji=False, **kwargs)

    def print(self, *objects: object, **kwargs: object) -> None:  # noqa: A003 - rich's name
        """rich's print, with `str` arguments passed through `shown`."""
        super().print(*(shown(o) if isinstance(o, str) else o for o in objects), **kwargs)


# Piped output (logs, CI) gets wide tables instead of 80 folded columns.
console = _PlainConsole(width=None if sys.stdout.isatty() else 200)
err_console = _PlainConsole(stderr=True)


# Rendering is ~5 ms a row; a 100,000-file drop prints its first rows and a count.
MAX_ROWS = 200


def print_table(title: str, rows: list[dict[str, str]], flag: str, limit: int = MAX_ROWS) -> None:
    """A rich table; rows whose `flag` column marks a skip are red (already_synced is not one).

    Past `limit`, skipped rows come first, so what needs attention is never cut off."""
    table = Table(title=shown(title), caption=f"{len(rows) - limit} more rows: use --json" if len(rows) > limit else None)
    for column in rows[0] if rows else ["file"]:
        table.add_column(shown(column), overflow="fold")
    if len(rows) > limit:
        rows = sorted(rows, key=lambda r: not _is_skip(r.get(flag, ""), flag))[:limit]
    for row in rows:
        table.add_row(*map(shown, row.values()), style="red" if _is_skip(row.get(flag, ""), flag) else None)
    console.print(table)


def _is_skip(value: str, flag: str) -> bool:
    if flag == "reason":
        return value not in ("", "already_synced")
    return value.startswith(("would_skip", "skipped", "held")) and not value.endswith("already_synced")


def print_plan(plan: Plan) -> None:
    """The old tool's dry-run tables: plan, copy plan, move plan and, with LabKey, the update
    diffs and planned creates (the latter suppressed with `skip_creates`)."""
    print_table(f"Plan: {plan.drop}", plan_rows(plan), "reason")
    if plan.labkey_configured:
        print_table("LabKey update diffs", labkey_diff_rows(plan), "changes")
        if not plan.config.writeback.skip_creates:
            print_table("LabKey planned creates", labkey_create_rows(plan), "files")
    print_table("Copy plan", copy_plan_rows(plan), "action")
    print_table("Move plan", move_plan_rows(plan), "action")


def print_labkey_summary(result: LabKeyResult) -> None:
    """What write-back did: rows inserted, updated, unchanged, and files held without a row."""
    held = sum(1 for f in result.files.values() if f.action == "held")
    console.print(f"LabKey {result.table}: {result.inserted} rows inserted, {result.updated} updated, "
                  f"{result.unchanged} unchanged; {len(result.recorded())} files recorded, {held} held")


@contextmanager
def progress_bars() -> Iterator[None]:
    """Show bytes/s bars for every hashing/copying task run in this process (on a terminal)."""
    if not err_console.is_terminal:
        yield
        return
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err_console, transient=False,
    )

    def sink(label: str, total: int):
        task = bars.add_task(shown(label), total=total)
        return (lambda n: bars.advance(task, n)), (lambda: bars.update(task, completed=total))

    with bars:
        progress.install(sink)
        try:
            yield
        finally:
            progress.install(None)
