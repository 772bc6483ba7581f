"""The drop job: every dropsync asset for one drop partition."""

import dagster as dg

from dropsync_dagster.celery_executor import celery_by_pool_executor
from dropsync_dagster.partitions import drops

sync_drop = dg.define_asset_job(
    "sync_drop",
    selection=dg.AssetSelection.groups("dropsync"),
    partitions_def=drops,
    description="Plan, hash, copy, record and archive one drop.",
    # One process per run: the steps are a chain, and a process per step (the multiprocess
    # default) costs more CPU than a small drop's whole sync. Runs run side by side instead
    # (max_concurrent_runs); choose `multiprocess` in the launchpad to overlap archive and copies.
    config={"execution": {"config": {"in_process": {}}}},
    # A run retry (deploy/dagster.yaml run_retries) starts over at the plan: the failure path
    # released the drop, and only the first writing step claims it again. Every step is
    # idempotent, so re-running the ones that succeeded costs time, never data.
    tags={"dagster/retry_strategy": "ALL_STEPS"},
)

# The same assets on Celery (dagster-celery over RabbitMQ): each step runs in a Celery worker,
# gpg and LabKey steps on the workers of their own queues. Run config: deploy/celery.yaml.
sync_drop_celery = dg.define_asset_job(
    "sync_drop_celery",
    selection=dg.AssetSelection.groups("dropsync"),
    partitions_def=drops,
    description="sync_drop with every step in a Celery worker; gpg and LabKey steps on their own queues.",
    executor_def=celery_by_pool_executor,
    tags={"dagster/retry_strategy": "ALL_STEPS"},
)
