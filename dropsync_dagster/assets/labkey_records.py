"""`labkey_records`: each copied file's LabKey row updated or inserted once, from the frozen plan."""

import dagster as dg

from dropsync_dagster.assets.repository_copies import repository_copies
from dropsync_dagster.assets.event_metadata import check_result, drop_check, held_metadata
from dropsync_dagster.assets.ownership import held
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.labkey.planning import WritebackTable, writeback_connection
from dropsync_dagster.core.steps.labkey_records import not_configured, rows_problems, write_records
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, LabKeyResult
from dropsync_dagster.core.labkey.writeback import writeback_configured
from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

LABKEY_CHECK = "labkey_rows_present"
LABKEY_CHECK_DESCRIPTION = (
    "Proves that every copied file's LabKey row exists with the planned values, read back from "
    "the server (passes with configured=false when the drop has no labkey section). Blocking: "
    "originals whose row is not confirmed stay in the drop. When it fails: check the LabKey "
    "server, the table and the credentials (LABKEY_API_KEY), then materialise the drop again; "
    "writes are idempotent, so rows already written are not written twice."
)


@dg.asset(
    partitions_def=drops,
    group_name="dropsync",
    kinds={"labkey"},
    deps=[repository_copies],
    pool="labkey",
    check_specs=[drop_check(LABKEY_CHECK, "labkey_records", LABKEY_CHECK_DESCRIPTION)],
)
def labkey_records(
    context: dg.AssetExecutionContext, storage: StorageResource, status: StatusResource, labkey: LabKeyResource
) -> dg.MaterializeResult:
    """Update existing rows by key and insert new ones (unless skip_creates); record every row id."""
    with held(context, status, storage) as step:
        plan = step.plan
        if not writeback_configured(plan.config):
            why = "not configured: no labkey section" if plan.config.labkey is None else "not configured: no fields"
            path = step.save("labkey", not_configured(plan, why))
            unwritten = held_files(plan, step.load_optional("checksums", ChecksumsResult),
                                   step.load_optional("copies", CopiesResult))
            return dg.MaterializeResult(
                metadata={"configured": False, "why": why, "result_json": dg.MetadataValue.path(str(path)),
                          **held_metadata(unwritten)},
                check_results=[check_result(LABKEY_CHECK, [], configured=False, drop=plan.drop)],
            )
        checksums = step.load("checksums", ChecksumsResult)
        copies = step.load("copies", CopiesResult)
        table = WritebackTable.open(labkey.client(writeback_connection(plan.config)), plan.config)
        previous = step.load_optional("labkey", LabKeyResult)  # an earlier attempt of this plan?
        result = write_records(plan, checksums, copies, table, lambda partial: step.save("labkey", partial),
                               previous, guard=step.guard)
    path = step.results.path(plan.drop, "labkey")
    return dg.MaterializeResult(
        metadata={
            "configured": True,
            "table": result.table,
            "inserted_rows": result.inserted,
            "updated_rows": result.updated,
            "unchanged_rows": result.unchanged,
            "recorded_files": len(result.recorded()),
            "seconds": round(result.seconds, 3),
            "result_json": dg.MetadataValue.path(str(path)),
            **held_metadata(held_files(plan, checksums, copies, result)),
        },
        check_results=[check_result(LABKEY_CHECK, rows_problems(plan, copies, result, table), drop=plan.drop)],
    )
