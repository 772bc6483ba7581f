"""`labkey_records`: each copied file's LabKey row updated or inserted once, from the frozen plan."""

import dagster as dg

from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import check_result, drop_check, held_metadata
from dropsync_dagster.assets.ownership import held
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.labkey.planning import WritebackTable, writeback_connection
from dropsync_dagster.core.steps.labkey_records import not_configured, rows_problems, write_records
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, LabKeyResult
from dropsync_dagster.core.labkey.writeback import writeback_configured
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

LABKEY_RECORDS = "labkey_records"  # this asset, whose result file the step also writes as it goes
LABKEY_CHECK = "labkey_rows_present"
LABKEY_CHECK_DESCRIPTION = (
    "Proves that every copied file's LabKey row exists with the planned values, read back from "
    "the server (passes with configured=false when the drop has no labkey section). Blocking: "
    "originals whose row is not confirmed stay in the drop. When it fails: check the LabKey "
    "server, the table and the credentials (LABKEY_API_KEY), then materialise the drop again; "
    "writes are idempotent, so rows already written are not written twice."
)


@drop_asset(
    LabKeyResult,
    {"labkey"},
    [drop_check(LABKEY_CHECK, "labkey_records", LABKEY_CHECK_DESCRIPTION)],
    pool="labkey",
)
def labkey_records(
    context: dg.AssetExecutionContext, drop_manifest: Plan, drop_checksums: ChecksumsResult,
    repository_copies: CopiesResult, storage: StorageResource, status: StatusResource, labkey: LabKeyResource,
) -> dg.MaterializeResult:
    """Update existing rows by key and insert new ones (unless skip_creates); record every row id."""
    plan, checksums, copies = drop_manifest, drop_checksums, repository_copies
    with held(context, status, storage, plan) as step:
        if not writeback_configured(plan.config):
            why = "not configured: no labkey section" if plan.config.labkey is None else "not configured: no fields"
            return dg.MaterializeResult(
                value=not_configured(plan, why),
                metadata={"configured": False, "why": why, **held_metadata(held_files(plan, checksums, copies))},
                check_results=[check_result(LABKEY_CHECK, [], configured=False, drop=plan.drop)],
            )
        table = WritebackTable.open(labkey.client(writeback_connection(plan.config)), plan.config)
        # This step's record of an earlier attempt of this plan (a retry, a re-execution), and of
        # this attempt as it writes: saved before the first batch and after each, so rows that
        # landed before a crash are known to the next attempt.
        previous = step.results.load_if_current(LABKEY_RECORDS, LabKeyResult, plan.plan_id)
        result = write_records(plan, checksums, copies, table, lambda partial: step.record(LABKEY_RECORDS, partial),
                               previous, guard=step.guard)
    return dg.MaterializeResult(
        value=result,
        metadata={
            "configured": True,
            "table": result.table,
            "inserted_rows": result.inserted,
            "updated_rows": result.updated,
            "unchanged_rows": result.unchanged,
            "recorded_files": len(result.recorded()),
            "seconds": round(result.seconds, 3),
            **held_metadata(held_files(plan, checksums, copies, result)),
        },
        check_results=[check_result(LABKEY_CHECK, rows_problems(plan, copies, result, table), drop=plan.drop)],
    )
