"""A sample of the hostile corpus through the Dagster job itself (`execute_in_process` on a test
instance), as the sensor's and the UI's runs execute it: the same invariants, no CLI around it."""

from __future__ import annotations

import faulthandler
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.plan.report import GATE_REASONS
from dropsync_dagster.cli.runner import first_failure
from dropsync_dagster.core.results import OriginalsResult
from dropsync_dagster_tests.support.dagster_env import with_resources
from dropsync_dagster_tests.hostile.harness import TIMEOUT, Case, Ran, check, take_before
from dropsync_dagster_tests.hostile.scene import Scene, make_scene
from dropsync_dagster_tests.hostile.test_hostile_cli import CASES

SAMPLE = ("link_to_root_only_file", "source_swapped_for_link_after_plan", "link_planted_in_processed_after_plan",
          "md5_malformed", "processed_is_drop")
JOB_CASES = [c for c in CASES if c.id in SAMPLE]


def run_job(scene: Scene) -> dg.ExecuteInProcessResult:
    """The project's sync_drop job with this scene's settings, on a fresh test instance."""
    definitions = with_resources(scene.full_env())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("drops", [scene.drop.key])
        job = definitions.resolve_job_def("sync_drop")
        return job.execute_in_process(partition_key=scene.drop.key, instance=instance, raise_on_error=False)


def held_any(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the run held a matched file at a gate (what makes the CLI exit 1)."""
    moves: OriginalsResult = result.output_for_node("archived_originals")
    return any(m.reason in GATE_REASONS for m in moves.files.values())


@pytest.mark.parametrize("case", JOB_CASES, ids=[c.id for c in JOB_CASES])
def test_hostile_input_through_the_job(case: Case, tmp_path: Path) -> None:
    scene = make_scene(tmp_path, f"job_{case.id}")
    case.arrange(scene)
    scene.write_config()
    before = take_before(scene)
    testhooks.clear()
    testhooks.install_commands(scene.hooks)
    faulthandler.dump_traceback_later(TIMEOUT, exit=True)  # a hang ends this worker instead of the suite
    try:
        result = run_job(scene)
    finally:
        faulthandler.cancel_dump_traceback_later()
        testhooks.clear()
    should_run = bool(set(case.exits) & {0, 1})
    problems = [] if result.success == should_run else [
        f"job {'succeeded' if result.success else 'failed: ' + first_failure(result)}, expected it to "
        f"{'succeed' if should_run else 'fail'}"]
    if not result.success:
        message = first_failure(result)
        problems += [f"failure does not name {w!r}: {message}" for w in case.said
                     if not any(x in message for x in w.split("|"))]
    code = (1 if held_any(result) else 0) if result.success else case.exits[0]
    problems += check(case, scene, before, Ran(code, b"", b""), outputs=False)
    assert not problems, f"{case.id} (job): {case.why}\n  " + "\n  ".join(problems)
