"""LabKey faults: a write the server applied and then answered badly (500, connection dropped,
timeout), through the Dagster job (re-run likewise); a LabKey outage mid-run through the CLI. Each then re-runs.

The commit-then-fail modes are the LabKey test server's (`fail_next`/`set_delay` with
`after_processing=True`, like `drop_next`): the write is applied, then the reply goes wrong."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pytest

from dropsync_dagster_tests.faults.invariants import check_invariants, failed_run_problems
from dropsync_dagster_tests.faults.world import World
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

TIMEOUT = 1.0  # seconds the client waits for a reply in the timeout case

COMMIT_THEN: dict[str, Callable[[LabKeyTestServer], None]] = {
    "500": lambda lk: lk.fail_next(1, status=500, action="insertRows", after_processing=True),
    "connection_drop": lambda lk: lk.drop_next(1, action="insertRows", after_processing=True),
    "timeout": lambda lk: lk.set_delay(3 * float(TIMEOUT), action="insertRows", n=1, after_processing=True),
}


@pytest.mark.parametrize("fault", sorted(COMMIT_THEN))
def test_write_applied_then_the_reply_fails(world: World, shared_instance: dg.DagsterInstance, fault: str) -> None:
    COMMIT_THEN[fault](world.labkey)
    faulted = world.job_outcome(world.run_job(shared_instance, timeout=TIMEOUT))
    assert world.labkey.count("insertRows") >= 1
    seen = [] if faulted.returncode in (0, 1) else [f"the run failed: {faulted.stderr} (an ambiguous write is resolved "
                                       "by re-reading presence)"]
    if len(world.rows()) != 3:
        seen.append(f"after the faulted run LabKey holds {[r['Name'] for r in world.rows()]}")
    check_invariants(world, world.job_outcome(world.run_job(shared_instance)), seen=seen)


def test_labkey_outage_mid_run(world: World) -> None:
    # Down once the copies are made, before the LabKey step: the run fails, nothing moves.
    faulted = world.sync_paused("copied", lambda pid: world.labkey_proxy.down())
    seen = failed_run_problems(faulted, "LabKey")
    assert not any(world.drop.processed.rglob("*.fastq.gz")), "an original moved without its LabKey row"
    world.labkey_proxy.up()
    check_invariants(world, world.sync(), seen=seen)
