"""One drop, several runs: concurrent CLI runs, a lease shorter than a step, SIGTERM mid-run.
A refused run changes nothing (the live run's frozen plan included); the heartbeat keeps a
working run's claim; a stopped run leaves no temporary and a claim the next run can take."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dropsync_dagster_tests.faults.invariants import TEMP_MARK, check_invariants, failed_run_problems
from dropsync_dagster_tests.faults.world import World, finish
from dropsync_dagster_tests.faults.hooks import once, pause

LEASE = 3  # seconds, for the lease cases


def manifest(world: World) -> Path:
    return world.state_dir / "drops" / world.drop.key / "drop_manifest.json"


def refused_while_live(world: World, others: int, point: str, skip: int = 0, **env: str) -> list[str]:
    """Run A pauses at `point`; `others` runs start and end meanwhile (each must be refused and
    leave A's plan as it was); then A goes on to exit 0. Returns the problems seen."""
    seen: list[str] = []
    live = world.start({point: once(world.hooks, point, pause(world.hooks, point), skip)}, **env)
    try:
        world.wait_at(point, live)
        plan_before = manifest(world).read_bytes()
        if env.get("DROPSYNC_LEASE_SECONDS"):
            time.sleep(LEASE + 2)  # the step outlives the lease: only a heartbeat keeps the claim
        rivals = [world.start(None, **env) for _ in range(others)]
        for n, rival in enumerate(map(finish, rivals), 1):
            seen += [f"rival {n}: {p}" for p in failed_run_problems(rival, "claimed")]
        if manifest(world).read_bytes() != plan_before:
            seen.append("a rival run rewrote the live run's frozen plan")
    finally:
        world.release(point)
    done = finish(live)
    if done.returncode != 0:
        seen.append(f"the live run exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return seen


def test_two_concurrent_runs(world: World) -> None:
    seen = refused_while_live(world, 1, "copied")
    check_invariants(world, world.sync(), seen=seen)


def test_three_concurrent_runs(world: World) -> None:
    seen = refused_while_live(world, 2, "before_move")
    check_invariants(world, world.sync(), seen=seen)


def test_three_runs_racing_from_the_start(world: World) -> None:
    runs = [finish(p) for p in [world.start() for _ in range(3)]]
    codes = sorted(r.returncode for r in runs)
    seen = [] if 0 in codes and set(codes) <= {0, 3} else [f"racing runs exited {codes}: {[r.stderr for r in runs]}"]
    check_invariants(world, world.sync(), seen=seen)


@pytest.mark.parametrize(("point", "skip"), [("before_publish", 0), ("before_move", 0)], ids=["copying", "moving"])
def test_lease_shorter_than_a_step(world: World, point: str, skip: int) -> None:
    seen = refused_while_live(world, 1, point, skip, DROPSYNC_LEASE_SECONDS=str(LEASE))
    check_invariants(world, world.sync(), seen=seen)


def test_sigterm_mid_copy(world: World) -> None:
    stopped = world.sync_paused("before_publish", lambda pid: os.kill(pid, signal.SIGTERM), skip=1)
    seen = failed_run_problems(stopped, "stop")
    seen += [f"temporary left by the stopped run: {p}" for p in world.base.rglob(f"*{TEMP_MARK}*")]
    check_invariants(world, world.sync(), seen=seen)
