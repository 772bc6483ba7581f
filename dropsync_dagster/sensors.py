"""Thin sensors: drop discovery (rules in core.drops.watch) and the run-failure path of the status store."""

import json

import dagster as dg

from dropsync_dagster.assets.encrypted_archive import encrypted_archive
from dropsync_dagster.assets.drop_checksums import drop_checksums
from dropsync_dagster.assets.repository_copies import repository_copies
from dropsync_dagster.assets.labkey_records import labkey_records
from dropsync_dagster.assets.drop_manifest import drop_manifest
from dropsync_dagster.assets.archived_originals import archived_originals
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.status.runs import record_run_failure
from dropsync_dagster.core.drops.watch import skip_reason, tick
from dropsync_dagster.jobs import sync_drop, sync_drop_celery
from dropsync_dagster.partitions import drops
from dropsync_dagster.deployment import DEFAULT_SENSOR_INTERVAL
from dropsync_dagster.runs import LAUNCHED_BY
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

DROP_ASSETS = frozenset(a.key for a in (drop_manifest, drop_checksums, encrypted_archive, repository_copies,
                                        labkey_records, archived_originals))


def drop_sensor_tick(context: dg.SensorEvaluationContext, storage: StorageResource,
                     status: StatusResource) -> dg.SensorResult:
    """Register ready drops as partitions; run new drops and synced drops that got new files."""
    settings = storage.settings()
    decided = tick(settings, json.loads(context.cursor) if context.cursor else None)
    for problem in decided.problems:
        context.log.warning(problem)
    try:
        store = status.store(settings)
        store.register_many({d.key: str(d.path) for d in decided.register})
        for drop in decided.run:
            store.mark_changed(drop.key)  # a synced drop with new files is pending again
    except DropsyncError as exc:
        # An unreachable status store must not stop discovery: runs will refuse at their claim.
        context.log.warning(f"status store: {exc}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=d.key, tags={LAUNCHED_BY: "sensor"}) for d in decided.run],
        dynamic_partitions_requests=[drops.build_add_request([d.key for d in decided.register])] if decided.register else [],
        cursor=json.dumps(decided.cursor, separators=(",", ":")),
        skip_reason=skip_reason(decided, settings),  # shown in the tick history when nothing runs
    )


def drop_sensor_every(seconds: int) -> dg.SensorDefinition:
    """`drop_sensor`, ticking every `seconds` (DROPSYNC_SENSOR_INTERVAL; tests use 1)."""
    return dg.sensor(name="drop_sensor", job=sync_drop, minimum_interval_seconds=seconds,
                     default_status=dg.DefaultSensorStatus.RUNNING)(drop_sensor_tick)


drop_sensor = drop_sensor_every(DEFAULT_SENSOR_INTERVAL)


def failed_drop(run: dg.DagsterRun) -> str | None:
    """The drop a failed run counts against: a run of one `drops` partition that materialises our
    assets, whatever launched it (sensor, job page, asset graph, backfill, retry). None for
    other runs and for the CLI's in-process runs, which the CLI counts itself."""
    ours = run.job_name in (sync_drop.name, sync_drop_celery.name) or bool(DROP_ASSETS & set(run.asset_selection or ()))
    if not ours or run.tags.get(LAUNCHED_BY) == "cli":
        return None
    return run.tags.get("dagster/partition")


# No monitored_jobs: every job of this code location, `__ASSET_JOB` (Materialize, backfills) included.
@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def drop_failure_sensor(context: dg.RunFailureSensorContext, storage: StorageResource, status: StatusResource) -> None:
    """Count a failed run against its drop (the CLI counts the runs it executes in-process)."""
    run = context.dagster_run
    drop = failed_drop(run)
    if drop is None:
        return
    error = context.failure_event.message or "run failed"
    # The drop's folder is not needed to count a failure (it may be gone): the document knows it.
    done = record_run_failure(status.store(storage.settings()), drop, None, run.root_run_id or run.run_id, error,
                              status.limits().max_failures)
    context.log.info(done)
