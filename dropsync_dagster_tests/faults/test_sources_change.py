"""A source appended to, deleted or replaced at each step of a Dagster job run (in-process hooks),
then a re-run of the job. A changed file is held (changed_since_plan / changed_after_copy),
never moved with bytes its copy, archive or lineage do not have; it never fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster_tests.faults.invariants import check_invariants
from dropsync_dagster_tests.faults.world import FILES, World

POINTS = ["planned", "hashed", "archive_published", "copied", "labkey_written", "before_move"]


def append(world: World, rel: str) -> None:
    """Bytes added at the end: same inode, new size, mtime and ctime."""
    with (world.drop.path / rel).open("ab") as f:
        f.write(b"appended\n")
    world.changed(rel)


def delete(world: World, rel: str) -> None:
    """The source is gone."""
    (world.drop.path / rel).unlink()
    world.changed(rel)


def replace(world: World, rel: str) -> None:
    """Another file of the same size and mtime takes the name: only the inode tells."""
    path = world.drop.path / rel
    swap = path.with_name(path.name + ".swap")
    swap.write_bytes(path.read_bytes().translate(bytes.maketrans(b"ACGT", b"TGCA")))
    stat = path.stat()
    os.utime(swap, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(swap, path)
    world.changed(rel)


MUTATIONS = {"append": append, "delete": delete, "replace": replace}


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_source_changes_mid_run(world: World, shared_instance: dg.DagsterInstance, mutation: str, point: str) -> None:
    fired: list[str] = []

    def act(**context: object) -> None:
        if fired:
            return
        # At a move, change the very file about to move; elsewhere, one file the run will move.
        rel = Path(str(context["path"])).relative_to(world.drop.path).as_posix() if point == "before_move" else FILES[1]
        fired.append(rel)
        MUTATIONS[mutation](world, rel)

    testhooks.install(point, act)
    faulted = world.job_outcome(world.run_job(shared_instance))
    testhooks.clear()
    assert fired, f"hook {point!r} was never reached"
    seen = [] if faulted.returncode in (0, 1) else [f"the run failed: {faulted.stderr} (a changed source is held)"]
    check_invariants(world, world.job_outcome(world.run_job(shared_instance)), all_synced=False, seen=seen)
