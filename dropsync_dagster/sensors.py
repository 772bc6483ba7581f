"""Thin sensors: drop discovery (see core.watch for the rules)."""

import json

import dagster as dg

from dropsync_dagster.core.watch import tick
from dropsync_dagster.jobs import sync_drop
from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.storage import StorageResource


@dg.sensor(job=sync_drop, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def drop_sensor(context: dg.SensorEvaluationContext, storage: StorageResource) -> dg.SensorResult:
    """Register ready drops as partitions; run new drops and synced drops that got new files."""
    decided = tick(storage.settings(), json.loads(context.cursor) if context.cursor else None)
    for problem in decided.problems:
        context.log.warning(problem)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=d.key, tags={"dropsync/drop": d.key}) for d in decided.run],
        dynamic_partitions_requests=[drops.build_add_request([d.key for d in decided.register])] if decided.register else [],
        cursor=json.dumps(decided.cursor, separators=(",", ":")),
    )
