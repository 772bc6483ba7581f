"""The one Definitions object: assets, checks, sensors, jobs, schedules and the deployment's resources.

Loading it reads the deployment's environment once (dropsync_dagster.deployment): a malformed
setting fails the code location's load with one line naming the variable.
"""

import dagster as dg

from dropsync_dagster.assets.archived_originals import archived_originals
from dropsync_dagster.assets.drop_checksums import drop_checksums
from dropsync_dagster.assets.drop_manifest import drop_manifest
from dropsync_dagster.assets.encrypted_archive import encrypted_archive
from dropsync_dagster.assets.labkey_records import labkey_records
from dropsync_dagster.assets.repository_copies import repository_copies
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.deployment import deployment_from_env, install_test_hooks
from dropsync_dagster.execution import drop_run_executor
from dropsync_dagster.jobs import sync_drop, sync_drop_celery
from dropsync_dagster.resources.deployment import resources_of
from dropsync_dagster.sensors import drop_failure_sensor, drop_sensor_every
from dropsync_dagster.stewardship.alert_sensors import alert_sensors
from dropsync_dagster.stewardship.audits import fixity_audit, fixity_audit_schedule, fixity_checks
from dropsync_dagster.stewardship.jobs import reconciliation, stewardship, stewardship_report, stewardship_schedule

try:
    deployment = deployment_from_env()
except ConfigError as exc:  # the load fails on the one line naming the setting, not the parser's frames
    raise exc.with_traceback(None) from None
install_test_hooks(deployment)

defs = dg.Definitions(
    assets=[drop_manifest, drop_checksums, encrypted_archive, repository_copies, labkey_records, archived_originals,
            stewardship_report, reconciliation],
    asset_checks=[fixity_checks],
    jobs=[sync_drop, sync_drop_celery, fixity_audit, stewardship],
    schedules=[fixity_audit_schedule(deployment.audit), stewardship_schedule(deployment.stewardship.cron)],
    sensors=[drop_sensor_every(deployment.sensor_interval), drop_failure_sensor, *alert_sensors],
    # Every job without an executor of its own (sync_drop, and the asset graph's __ASSET_JOB that
    # Materialize and backfills launch) runs in one process with the drop runs' retry strategy.
    executor=drop_run_executor,
    resources=resources_of(deployment),
)
