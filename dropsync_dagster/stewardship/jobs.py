"""The stewardship job: the period report and the reconciliation as assets, on a schedule.

`stewardship_report` carries integer metadata on every materialization — this month's numbers
(`month/…`) and the all-time totals (`total/…`) — which the asset's Plots tab draws across
materializations, plus a table of every month. `reconciliation` carries one integer per finding
kind (plotted the same way) and a WARN check that fails while anything is found.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from dropsync_dagster.assets.event_metadata import counts_metadata, markdown_table
from dropsync_dagster.core.stewardship.reconcile import reconcile
from dropsync_dagster.core.stewardship.report import COLUMNS, PeriodRow, period_report, totals
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

GROUP = "stewardship"
RECONCILED_CHECK = "reconciliation_clean"
RECONCILED_CHECK_DESCRIPTION = (
    "Proves that the repository, the lineage, LabKey, the archive members and the drops agree. Fails "
    "with WARN (not blocking) listing each finding (kind, drop, path): run `dropsync reconcile` for "
    "the full list, then fix the file, row or lineage it names."
)


def _numbers(row: PeriodRow, prefix: str) -> dict[str, int]:
    return {f"{prefix}{name}": getattr(row, name) for name in COLUMNS[1:]}


@dg.asset(group_name=GROUP, kinds={"python"})
def stewardship_report(storage: StorageResource, status: StatusResource) -> dg.MaterializeResult:
    """Per month: drops synced and failed, files and bytes synced, files held (as `dropsync report`)."""
    rows = period_report(status.store(storage.settings()))
    now = datetime.now(timezone.utc).strftime("%Y-%m")  # a quiet month plots as zeros, not as the last busy one
    month = next((r for r in rows if r.period == now), PeriodRow(period=now))
    return dg.MaterializeResult(metadata={
        "month": month.period,
        **_numbers(month, "month/"),
        **_numbers(totals(rows), "total/"),
        "months": markdown_table([{k: str(v) for k, v in r.model_dump().items()} for r in reversed(rows)]),
    })


@dg.asset(group_name=GROUP, kinds={"python"},
          check_specs=[dg.AssetCheckSpec(RECONCILED_CHECK, asset="reconciliation", description=RECONCILED_CHECK_DESCRIPTION)])
def reconciliation(storage: StorageResource, status: StatusResource, labkey: LabKeyResource) -> dg.MaterializeResult:
    """Repository, lineage, LabKey, archive and drops compared (as `dropsync reconcile`)."""
    settings = storage.settings()
    found = reconcile(status.store(settings), settings.state_dir, labkey.client)
    listed = [f"{f.kind}: {f.drop} {f.path} ({f.detail})" for f in found.findings]
    table = markdown_table([{"kind": f.kind.value, "drop": f.drop, "path": f.path} for f in found.findings])
    return dg.MaterializeResult(
        metadata={"drops": found.drops, "files": found.files, "findings": len(found.findings),
                  **counts_metadata(found.counts(), "findings/"), "found": table,
                  "skipped": dg.MetadataValue.md("\n".join(f"- {s}" for s in found.skipped) or "_none_")},
        check_results=[dg.AssetCheckResult(
            check_name=RECONCILED_CHECK, passed=found.clean, severity=dg.AssetCheckSeverity.WARN,
            metadata={"findings": len(listed), "first": dg.MetadataValue.md("\n".join(f"- {x}" for x in listed[:50]) or "_none_")},
        )],
    )


stewardship = dg.define_asset_job("stewardship", selection=dg.AssetSelection.groups(GROUP),
                                  description="The period report and the reconciliation of every drop.")

def stewardship_schedule(cron: str) -> dg.ScheduleDefinition:
    """The stewardship job at the deployment's DROPSYNC_STEWARDSHIP_CRON (default daily 06:00)."""
    return dg.ScheduleDefinition(name="stewardship_schedule", job=stewardship, cron_schedule=cron,
                                 default_status=dg.DefaultScheduleStatus.RUNNING)
