"""`archived_originals`: originals move to the processed folder only when every gate held."""

import dagster as dg

from dropsync_dagster.assets.archive import encrypted_archive
from dropsync_dagster.assets.copies import repository_copies
from dropsync_dagster.assets.labkey import labkey_records
from dropsync_dagster.assets.ownership import hold, run_owner
from dropsync_dagster.assets.metadata import check_result, counts_metadata, tally
from dropsync_dagster.core.checks import original_problems
from dropsync_dagster.core.labkey_records import recorded_files
from dropsync_dagster.core.lineage import lineage_docs
from dropsync_dagster.core.originals import move_originals
from dropsync_dagster.core.results import ArchiveStepResult, ChecksumsResult, CopiesResult, LabKeyResult
from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

ORIGINALS_CHECK = "originals_accounted_for"


@dg.asset(
    partitions_def=drops,
    group_name="dropsync",
    kinds={"python"},
    deps=[repository_copies, encrypted_archive, labkey_records],
    check_specs=[dg.AssetCheckSpec(ORIGINALS_CHECK, asset="archived_originals")],
)
def archived_originals(context: dg.AssetExecutionContext, storage: StorageResource, status: StatusResource) -> dg.MaterializeResult:
    """Move each original whose copy is verified (and recorded/archived where required)."""
    results = storage.results()
    plan = results.load_plan(context.partition_key)
    store = hold(context, status, storage, plan.drop)
    checksums = results.load(plan.drop, "checksums", ChecksumsResult)
    copies = results.load(plan.drop, "copies", CopiesResult)
    archive = results.load(plan.drop, "archive", ArchiveStepResult)
    # Only files whose validated archive copy matches their checksum may leave the drop.
    hashed = {r: c.digests.blake3 for r, c in checksums.files.items() if c.digests is not None}
    archived = {r for r, b3 in archive.archived.items() if hashed.get(r) == b3}
    # Where the drop writes LabKey rows, only files whose row this plan's write-back confirmed move.
    labkey = results.load_optional(plan.drop, "labkey", LabKeyResult)
    originals = move_originals(
        plan, checksums, copies, storage.settings(),
        recorded=recorded_files(plan, labkey), archived=archived if archive.enabled else None,
    )
    path = results.save(plan.drop, "originals", originals)
    row_ids = labkey.row_ids() if labkey is not None and labkey.plan_created_at == plan.created_at else None
    store.put_files(plan.drop, lineage_docs(plan, checksums, copies, archive, originals, row_ids=row_ids))
    outcomes = tally([m.label for m in originals.files.values()])
    store.mark_synced(plan.drop, run_owner(context), outcomes)
    return dg.MaterializeResult(
        metadata={
            "files": len(originals.files),
            **counts_metadata(outcomes, "outcome/"),
            "result_json": dg.MetadataValue.path(str(path)),
        },
        check_results=[check_result(ORIGINALS_CHECK, original_problems(plan, originals, checksums))],
    )
