"""`drop_checksums`: one read per file; MD5 sidecars verified, BLAKE3 computed and written."""

import dagster as dg

from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import held_metadata, tally, transfer_metadata
from dropsync_dagster.assets.ownership import held
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.labkey.writeback import wants_checksum
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ChecksumsResult
from dropsync_dagster.core.steps.drop_checksums import compute_checksums
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource


@drop_asset(ChecksumsResult, {"python"})
def drop_checksums(context: dg.AssetExecutionContext, drop_manifest: Plan, storage: StorageResource,
                   status: StatusResource) -> dg.MaterializeResult:
    """BLAKE3 (and MD5 where a sidecar or write-back needs it) of every file that goes ahead."""
    with held(context, status, storage, drop_manifest) as step:  # before the first write (sidecars)
        checksums = compute_checksums(step.plan, want_md5=wants_checksum(step.plan.config))
    verdicts = tally([str(f.reason or "ok") for f in checksums.files.values()])
    return dg.MaterializeResult(
        value=checksums,
        metadata={**transfer_metadata(len(checksums.files), verdicts, "verdict/", checksums.bytes, checksums.seconds),
                  **held_metadata(held_files(drop_manifest, checksums))},
    )
