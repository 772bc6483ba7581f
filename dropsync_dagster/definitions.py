"""The one Definitions object: assets, checks, sensor, job and resources."""

import dagster as dg

from dropsync_dagster.assets.encrypted_archive import encrypted_archive
from dropsync_dagster.assets.drop_checksums import drop_checksums
from dropsync_dagster.assets.repository_copies import repository_copies
from dropsync_dagster.assets.labkey_records import labkey_records
from dropsync_dagster.assets.drop_manifest import drop_manifest
from dropsync_dagster.assets.archived_originals import archived_originals
from dropsync_dagster.execution import drop_run_executor
from dropsync_dagster.jobs import sync_drop, sync_drop_celery
from dropsync_dagster.resources.drop_results import DROP_RESULTS, DropResultsIOManager
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster.sensors import drop_failure_sensor, drop_sensor

storage, status = StorageResource.from_env(), StatusResource.from_env()

defs = dg.Definitions(
    assets=[drop_manifest, drop_checksums, encrypted_archive, repository_copies, labkey_records, archived_originals],
    jobs=[sync_drop, sync_drop_celery],
    sensors=[drop_sensor, drop_failure_sensor],
    # Every job without an executor of its own (sync_drop, and the asset graph's __ASSET_JOB that
    # Materialize and backfills launch) runs in one process with the drop runs' retry strategy.
    executor=drop_run_executor,
    resources={
        "storage": storage,
        "gpg": GpgResource.from_env(),
        "status": status,
        "labkey": LabKeyResource.from_env(),
        # Results between the drop assets: JSON per drop and asset in the state folder.
        DROP_RESULTS: DropResultsIOManager(storage=storage, status=status),
    },
)
