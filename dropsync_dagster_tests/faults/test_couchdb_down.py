"""The status store (CouchDB, here PouchDB Server) goes down at each step of a CLI run; it comes
back, and a re-run completes at once: the failed run's claim does not block the drop, lineage
written ahead of the moves is complete."""

from __future__ import annotations

import pytest

from dropsync_dagster_tests.faults.invariants import check_invariants, failed_run_problems
from dropsync_dagster_tests.faults.world import World

# The last point reached before the outage, one per step (manifest, checksums, archive, copies,
# LabKey, moves) plus inside the moves.
POINTS = [("planned", 0), ("hashed", 0), ("archive_published", 0), ("copied", 0), ("labkey_written", 0),
          ("before_move", 1), ("moved", 0)]


@pytest.mark.parametrize(("point", "skip"), POINTS, ids=[p for p, _ in POINTS])
def test_couchdb_down_then_back(world: World, point: str, skip: int) -> None:
    faulted = world.sync_paused(point, lambda pid: world.couchdb.down(), skip=skip)
    seen = failed_run_problems(faulted, "CouchDB")
    world.couchdb.up()
    check_invariants(world, world.sync(), seen=seen)
