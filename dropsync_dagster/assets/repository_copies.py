"""`repository_copies`: verified, durable, no-overwrite copies into the repository."""

import dagster as dg

from dropsync_dagster.assets.ownership import held
from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import check_result, drop_check, held_metadata, tally, transfer_metadata
from dropsync_dagster.core.integrity.checks import copy_problems
from dropsync_dagster.core.steps.repository_copies import copy_files
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

COPIES_CHECK = "copies_match_source_digests"
COPIES_CHECK_DESCRIPTION = (
    "Proves that every repository copy, and every target found already synced, re-hashes from "
    "disk to its source's BLAKE3. Blocking: LabKey and the move of originals wait for it. When it "
    "fails: the listed targets are missing or differ — check the repository's storage, compare "
    "the target with its source before removing anything, then materialise the drop again."
)


@drop_asset(
    CopiesResult,
    {"python"},
    [drop_check(COPIES_CHECK, "repository_copies", COPIES_CHECK_DESCRIPTION)],
)
def repository_copies(context: dg.AssetExecutionContext, drop_manifest: Plan, drop_checksums: ChecksumsResult,
                      storage: StorageResource, status: StatusResource) -> dg.MaterializeResult:
    """Copy each verified file to its frozen target; identical targets count as already synced."""
    plan, checksums = drop_manifest, drop_checksums
    with held(context, status, storage, plan) as step:
        copies = copy_files(plan, checksums, storage.settings(), guard=step.guard)
    outcomes = tally([c.outcome for c in copies.files.values()])
    return dg.MaterializeResult(
        value=copies,
        metadata={**transfer_metadata(len(copies.files), outcomes, "outcome/", copies.bytes, copies.seconds),
                  **held_metadata(held_files(plan, checksums, copies))},
        check_results=[check_result(COPIES_CHECK, copy_problems(copies, checksums), drop=plan.drop)],
    )
