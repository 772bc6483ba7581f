"""The drop job: every dropsync asset for one drop partition."""

import dagster as dg

from dropsync_dagster.partitions import drops

sync_drop = dg.define_asset_job(
    "sync_drop",
    selection=dg.AssetSelection.groups("dropsync"),
    partitions_def=drops,
    description="Plan, hash, copy, record and archive one drop.",
)
