"""The drop job: every dropsync asset for one drop partition."""

import dagster as dg

from dropsync_dagster.assets.drop_asset import DROP_GROUP
from dropsync_dagster.stewardship.audits import fixity_checks
from dropsync_dagster.celery_executor import celery_by_pool_executor
from dropsync_dagster.execution import RUN_TAGS
from dropsync_dagster.partitions import drops

# The drop's assets and their own checks; the fixity audit runs on its schedule, in its own job.
DROP_SELECTION = dg.AssetSelection.groups(DROP_GROUP) - dg.AssetSelection.checks(fixity_checks)

sync_drop = dg.define_asset_job(
    "sync_drop",
    selection=DROP_SELECTION,
    partitions_def=drops,
    description="Plan, hash, copy, record and archive one drop.",
    # Executor and retry strategy: the Definitions' (dropsync_dagster.execution), as for every run
    # of these assets. A run retry (deploy/dagster.yaml run_retries) starts over at the plan: the
    # failure path released the drop, and only the first writing step claims it again. Every step
    # is idempotent, so re-running the ones that succeeded costs time, never data.
    tags=dict(RUN_TAGS),
)

# The same assets on Celery (dagster-celery over RabbitMQ): each step runs in a Celery worker,
# gpg and LabKey steps on the workers of their own queues. Run config: deploy/celery.yaml.
sync_drop_celery = dg.define_asset_job(
    "sync_drop_celery",
    selection=DROP_SELECTION,
    partitions_def=drops,
    description="sync_drop with every step in a Celery worker; gpg and LabKey steps on their own queues.",
    executor_def=celery_by_pool_executor,
    tags=dict(RUN_TAGS),
)
