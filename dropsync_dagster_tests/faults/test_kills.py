"""SIGKILL (a power cut) at every step boundary and inside each long step, then a re-run."""

from __future__ import annotations

import json

import pytest

from dropsync_dagster_tests.faults.hooks import KILL, kill_when_file_grows, kill_when_read, once
from dropsync_dagster_tests.faults.invariants import check_invariants
from dropsync_dagster_tests.faults.world import BIG, FILES, World

# (hook, passes to let through first): step boundaries, then points inside a step.
BOUNDARIES = [("planned", 0), ("hashed", 0), ("copied", 0), ("archive_published", 0), ("labkey_written", 0),
              ("moved", 0)]
INSIDE = [
    ("before_publish", 1),  # copying: one file published, the next about to be
    ("published", 0),  # between a publish (link) and the unlink of its temporary
    ("archive_encrypting", 0),  # gpg is encrypting
    ("before_move", 1),  # moving: one original moved, the next about to be
    ("between_moves", 0),  # an original linked to processed and unlinked, the next not yet
]


def test_control_a_clean_run_satisfies_the_invariants(world: World) -> None:
    done = world.sync()
    assert done.returncode == 0, done.stderr
    processed = world.drop.processed / FILES[0]
    shown = world.cli("lineage", str(processed))  # the steward's view of the same lineage document
    assert shown.returncode == 0 and json.loads(shown.stdout)["processed"] == str(processed), shown.stderr
    check_invariants(world, world.sync())


@pytest.mark.parametrize(("point", "skip"), BOUNDARIES + INSIDE, ids=[p for p, _ in BOUNDARIES + INSIDE])
def test_sigkill_then_rerun(world: World, point: str, skip: int) -> None:
    killed = world.sync({point: once(world.hooks, point, KILL, skip)})
    assert world.fired(point), f"hook {point!r} was never reached (exit {killed.returncode}: {killed.stderr.strip()})"
    assert killed.returncode == -9
    check_invariants(world, world.sync())


def test_sigkill_inside_hashing(world: World) -> None:
    world.add_big(48)
    # Armed when the plan is made; fires once the run has read 16 MiB more (the big file, hashing).
    killed = world.sync({"planned": once(world.hooks, "planned", kill_when_read(16 << 20))})
    assert killed.returncode == -9
    results = world.state_dir / "drops" / world.drop.key
    assert (results / "drop_manifest.json").exists() and not (results / "drop_checksums.json").exists()
    check_invariants(world, world.sync())


def test_sigkill_inside_a_large_copy(world: World) -> None:
    world.add_big(48)
    watch = kill_when_file_grows(world.drop.repository, "*dropsync-tmp*", 16 << 20)
    killed = world.sync({"hashed": once(world.hooks, "hashed", watch)})
    assert killed.returncode == -9
    assert (world.drop.path / BIG).exists()
    check_invariants(world, world.sync())
