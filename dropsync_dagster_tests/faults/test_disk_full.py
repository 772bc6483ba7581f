"""Disk full on the repository, archive, processed and state folders, mid-step; space comes back
and a re-run completes. The failed run says which folder (one line, exit 3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dropsync_dagster_tests.faults.disks import SmallDisks, fill, free
from dropsync_dagster_tests.faults.invariants import check_invariants, failed_run_problems
from dropsync_dagster_tests.faults.world import World

# folder -> (its path in the world, the hook at which it fills up)
CASES: dict[str, tuple[Callable[[World], Path], str]] = {
    "repository": (lambda w: w.drop.repository, "hashed"),  # before the first copy
    "archive": (lambda w: w.archive_dir, "hashed"),  # before gpg writes the archive
    "processed": (lambda w: w.drop.processed, "between_moves"),  # one original moved, the next fails
    "state": (lambda w: w.state_dir, "moved"),  # moves done, their results not yet saved
}


@pytest.mark.parametrize("folder", sorted(CASES))
def test_disk_full_then_rerun(world: World, small_disks: SmallDisks, folder: str) -> None:
    where, point = CASES[folder]
    path = where(world)
    small_disks.mount(path)
    fillers: list[Path] = []
    faulted = world.sync_paused(point, lambda pid: fillers.append(fill(path)))
    free(fillers[0])
    check_invariants(world, world.sync(), seen=failed_run_problems(faulted, str(path)))
