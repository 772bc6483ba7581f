"""`labkey_records`: each copied file's LabKey row updated or inserted once, from the frozen plan."""

import dagster as dg

from dropsync_dagster.assets.copies import repository_copies
from dropsync_dagster.assets.metadata import check_result
from dropsync_dagster.assets.ownership import held
from dropsync_dagster.core.labkey_plan import WritebackTable, writeback_connection
from dropsync_dagster.core.labkey_records import not_configured, rows_problems, write_records
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, LabKeyResult
from dropsync_dagster.core.writeback import writeback_configured
from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

LABKEY_CHECK = "labkey_rows_present"


@dg.asset(
    partitions_def=drops,
    group_name="dropsync",
    kinds={"labkey"},
    deps=[repository_copies],
    pool="labkey",
    check_specs=[dg.AssetCheckSpec(LABKEY_CHECK, asset="labkey_records", blocking=True)],
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
            return dg.MaterializeResult(
                metadata={"configured": False, "why": why, "result_json": dg.MetadataValue.path(str(path))},
                check_results=[check_result(LABKEY_CHECK, [], configured=False)],
            )
        checksums = step.load("checksums", ChecksumsResult)
        copies = step.load("copies", CopiesResult)
        table = WritebackTable.open(labkey.client(writeback_connection(plan.config)), plan.config)
        previous = step.load_optional("labkey", LabKeyResult)  # an earlier attempt of this plan?
        result = write_records(plan, checksums, copies, table, lambda partial: step.save("labkey", partial),
                               previous, guard=step.guard)
    path = step.results.path(plan.drop, "labkey")
    held_files = sum(1 for f in result.files.values() if f.action == "held")
    return dg.MaterializeResult(
        metadata={
            "configured": True,
            "table": result.table,
            "inserted_rows": result.inserted,
            "updated_rows": result.updated,
            "unchanged_rows": result.unchanged,
            "recorded_files": len(result.recorded()),
            "held_files": held_files,
            "seconds": round(result.seconds, 3),
            "result_json": dg.MetadataValue.path(str(path)),
        },
        check_results=[check_result(LABKEY_CHECK, rows_problems(plan, copies, result, table))],
    )
