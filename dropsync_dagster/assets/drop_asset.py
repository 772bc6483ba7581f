"""What every drop asset shares: one partition per drop, the `dropsync` group (the drop job's
selection) and the drop results' IO manager."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.drop_results import DROP_RESULTS

DROP_GROUP = "dropsync"


def drop_asset(dagster_type: type, kinds: set[str], checks: Sequence[dg.AssetCheckSpec] = (),
               pool: str | None = None):
    """The `dg.asset` decorator of a drop step whose result, of `dagster_type`, goes through the IO manager."""
    return dg.asset(partitions_def=drops, group_name=DROP_GROUP, kinds=kinds, pool=pool, io_manager_key=DROP_RESULTS,
                    dagster_type=dagster_type, check_specs=list(checks))
