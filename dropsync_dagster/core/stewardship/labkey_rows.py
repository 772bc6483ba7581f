"""Reconciliation against LabKey: repository files without a row, and rows naming missing files.

Rows are found as write-back finds them again (`WritebackTable.lookup`: the `file_list` field
holds the target, or the `presence_check`'s recorded row ids); the paths a row names are the
lines of its `file_list` and `file_list_aggregator` cells.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dropsync_dagster.core.drops.layout import inside
from dropsync_dagster.core.labkey.columns import row_value
from dropsync_dagster.core.labkey.connection import Filter
from dropsync_dagster.core.labkey.planning import MakeClient, WritebackTable, writeback_connection
from dropsync_dagster.core.labkey.writeback import field_key
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.stewardship.findings import Finding, FindingKind
from dropsync_dagster.core.status.files import FileDoc


def rows_missing_for(plan: Plan, docs: Sequence[FileDoc], make_client: MakeClient) -> list[Finding]:
    """Repository files of the drop (lineage with a target on disk) that no LabKey row holds."""
    present = [d for d in docs if d.target and os.path.lexists(d.target)]
    if not present:
        return []
    table = WritebackTable.open(make_client(writeback_connection(plan.config)), plan.config)
    if table.rule.by_target:
        found = table.lookup([d.target for d in present])  # type: ignore[misc]
        missing = [d for d in present if not found.get(d.target or "")]
    else:
        rows = table.rows_by_key([d.labkey_row_id for d in present if d.labkey_row_id is not None])
        missing = [d for d in present if d.labkey_row_id is None or str(d.labkey_row_id) not in rows]
    where = f"{table.schema}.{table.table}"
    return [Finding(kind=FindingKind.NO_LABKEY_ROW, drop=plan.drop, path=d.target or "",
                    detail=f"no row of {where} holds it") for d in missing]


def named_paths(plan: Plan, make_client: MakeClient) -> dict[str, str]:
    """Every path under the drop's repository folder that a row of its table names -> the row key."""
    fields = [field_key(plan.config, f) for f in (plan.config.file_list_field(), plan.config.aggregator_field()) if f]
    if not fields:
        return {}
    table = WritebackTable.open(make_client(writeback_connection(plan.config)), plan.config)
    folder = Path(plan.repository_folder)
    named: dict[str, str] = {}
    for column in dict.fromkeys(table.columns[f] for f in fields):
        rows = table.client.select_rows(table.schema, table.table, [column],
                                        [Filter(column, "contains", str(folder).rstrip(os.sep) + os.sep)])
        for row in rows:
            for path in cell_paths(row_value(row, column)):
                if inside(Path(path), folder):
                    named[path] = str(row_value(row, table.key)) if table.key else ""
    return named


def cell_paths(cell: object) -> list[str]:
    """The absolute paths a cell names: each line from its first `/` (a line may carry a prefix)."""
    lines = (line.rstrip() for line in str(cell or "").splitlines())
    return [line[line.index("/"):] for line in lines if "/" in line]
