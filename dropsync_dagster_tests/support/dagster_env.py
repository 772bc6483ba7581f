"""The project's Definitions bound to a test drop's settings instead of the process environment."""

from __future__ import annotations

import dagster as dg

from dropsync_dagster.definitions import defs
from dropsync_dagster.resources.drop_results import DROP_RESULTS, DropResultsIOManager
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster_tests.support.drops import Drop


def storage_for(env: dict[str, str]) -> StorageResource:
    """A StorageResource carrying exactly these DROPSYNC_* values."""
    return StorageResource(
        state_dir=env["DROPSYNC_STATE_DIR"],
        allowed_roots=env.get("DROPSYNC_ALLOWED_ROOTS"),
        drop_roots=env.get("DROPSYNC_DROP_ROOTS"),
        ready_files=env.get("DROPSYNC_READY_FILES"),
        quiet_seconds=env.get("DROPSYNC_QUIET_SECONDS"),
    )


NO_ARCHIVE = GpgResource(recipients="", require_archive="false")
SQLITE_STATUS = StatusResource(couchdb_url="")  # the embedded store in the drop's state folder


def definitions_for(drop: Drop, **resources: object) -> dg.Definitions:
    """All assets, checks, jobs and sensors with test resources: storage from the drop's env,
    archives off unless a `gpg` resource is given, the SQLite status store unless `status` is."""
    return with_resources(drop.env(), **resources)


def with_resources(env: dict[str, str], **resources: object) -> dg.Definitions:
    """The project's Definitions with storage from `env`, archives off and the SQLite status store
    unless given, and the drop results' IO manager on the same storage and status store."""
    bound: dict[str, object] = {**(defs.resources or {}), "storage": storage_for(env), "gpg": NO_ARCHIVE,
                                "status": SQLITE_STATUS, **resources}
    bound[DROP_RESULTS] = DropResultsIOManager(storage=bound["storage"], status=bound["status"])
    return dg.Definitions(
        assets=list(defs.assets or []),
        asset_checks=list(defs.asset_checks or []),
        jobs=list(defs.jobs or []),
        sensors=list(defs.sensors or []),
        executor=defs.executor,
        resources=bound,
    )


def run_job(drop: Drop, instance: dg.DagsterInstance, **resources: object) -> dg.ExecuteInProcessResult:
    """Register the drop's partition and execute the whole sync_drop job for it."""
    if drop.key not in instance.get_dynamic_partitions("drops"):
        instance.add_dynamic_partitions("drops", [drop.key])
    job = definitions_for(drop, **resources).resolve_job_def("sync_drop")
    return job.execute_in_process(partition_key=drop.key, instance=instance, raise_on_error=False)
