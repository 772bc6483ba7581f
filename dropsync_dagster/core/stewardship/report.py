"""The period report: per month, drops synced and failed, files and bytes synced, files held.

A drop counts in the month of its last status change (`updated_at`, UTC); its files are counted
from its lineage: `moved` originals are synced (their bytes too), any other move outcome is held
(e.g. `held`, `exists`, `changed_after_copy`, or a quarantine).
"""

from __future__ import annotations

import csv
import io
from datetime import date

from pydantic import BaseModel

from dropsync_dagster.core.status.document import DropState
from dropsync_dagster.core.status.store import StatusStore

SYNCED_MOVES = ("moved",)
IN_FLIGHT_MOVES = ("intended", None)  # write-ahead intents and files not at the move step yet


class PeriodRow(BaseModel):
    """One month of the report."""

    period: str  # YYYY-MM
    drops: int = 0  # drops whose status changed in the month
    drops_synced: int = 0
    drops_failed: int = 0
    files_synced: int = 0
    bytes_synced: int = 0
    files_held: int = 0


COLUMNS = list(PeriodRow.model_fields)


def period_report(store: StatusStore, since: date | None = None, until: date | None = None) -> list[PeriodRow]:
    """One row per month with activity between `since` and `until` (inclusive days), oldest first."""
    months: dict[str, PeriodRow] = {}
    for doc in store.list():
        if doc.updated_at is None or doc.unknown:
            continue
        day = doc.updated_at.date()
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        row = months.setdefault(day.strftime("%Y-%m"), PeriodRow(period=day.strftime("%Y-%m")))
        row.drops += 1
        row.drops_synced += doc.status == DropState.SYNCED
        row.drops_failed += doc.status == DropState.FAILED
        for file in store.drop_files(doc.id):
            move = (file.model_extra or {}).get("move")
            if move in SYNCED_MOVES:
                row.files_synced += 1
                row.bytes_synced += file.size or 0
            elif move not in IN_FLIGHT_MOVES:
                row.files_held += 1
    return [months[m] for m in sorted(months)]


def as_csv(rows: list[PeriodRow]) -> str:
    """The report as CSV with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.model_dump() for r in rows)
    return buf.getvalue()


def totals(rows: list[PeriodRow]) -> PeriodRow:
    """The sum of `rows` (period `total`)."""
    total = PeriodRow(period="total")
    for row in rows:
        for name in COLUMNS[1:]:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total
