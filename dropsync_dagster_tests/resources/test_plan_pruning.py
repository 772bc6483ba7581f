"""Frozen plans do not pile up: a real run, once it holds the drop, removes earlier runs' plans
but the current one, and none younger than the grace period (a 100,000-file plan is ~90 MiB)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.plan import frozen
from dropsync_dagster_tests.assets.test_pipeline import plain_drop
from dropsync_dagster_tests.resources.test_drop_results import materialise
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop

AN_HOUR = 3600.0  # older than the grace period (frozen.PLAN_GRACE_SECONDS)


def plans(drop: Drop) -> set[str]:
    return {p.name for p in (drop.settings().state_dir / "drops" / drop.key / "plans").iterdir()}


def age(drop: Drop, seconds: float) -> None:
    """Make every file in the drop's plans folder `seconds` older."""
    for path in (drop.settings().state_dir / "drops" / drop.key / "plans").iterdir():
        then = time.time() - seconds
        os.utime(path, (then, then))


def test_a_run_removes_earlier_plans_but_the_current_one(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    ids = []
    with dg.instance_for_test() as instance:
        for _ in range(3):
            result = run_job(drop, instance)
            assert result.success
            ids.append(result.output_for_node("drop_manifest").plan_id)
            age(drop, AN_HOUR)
        (drop.settings().state_dir / "drops" / drop.key / "plans" / ".x.abc.tmp").write_text("a dead writer's")
        age(drop, AN_HOUR)
        dry = materialise(drop, instance, ["drop_manifest"])  # a dry run prunes nothing
        assert dry.success
        assert plans(drop) == {f"{ids[1]}.jsonl", f"{ids[2]}.jsonl", f"{dry.output_for_node('drop_manifest').plan_id}.jsonl",
                               ".x.abc.tmp"}
        age(drop, AN_HOUR)
        last = run_job(drop, instance)
    assert last.success
    # The dry run's plan was current when the last run started; the rest of the old ones went.
    assert plans(drop) == {f"{dry.output_for_node('drop_manifest').plan_id}.jsonl",
                           f"{last.output_for_node('drop_manifest').plan_id}.jsonl"}


def test_young_plans_stay(tmp_path: Path) -> None:
    assert frozen.PLAN_GRACE_SECONDS < AN_HOUR
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        ids = [run_job(drop, instance).output_for_node("drop_manifest").plan_id for _ in range(3)]
    assert plans(drop) == {f"{i}.jsonl" for i in ids}


def test_a_damaged_current_plan_document_prunes_nothing_and_the_run_heals_it(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        first = run_job(drop, instance).output_for_node("drop_manifest").plan_id
        age(drop, AN_HOUR)
        frozen.current_path(drop.settings().state_dir, drop.key).write_text("{not json")
        assert frozen.prune_plans(drop.settings().state_dir, drop.key) == []
        second = run_job(drop, instance)
    assert second.success
    assert plans(drop) == {f"{first}.jsonl", f"{second.output_for_node('drop_manifest').plan_id}.jsonl"}
    assert frozen.current_plan_id(drop.settings().state_dir, drop.key) == second.output_for_node("drop_manifest").plan_id


def test_a_plans_folder_that_is_a_link_is_not_pruned_through(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance).success
    folder = drop.settings().state_dir / "drops" / drop.key / "plans"
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere)
    (elsewhere / "not-a-plan-of-ours.jsonl").write_text("{}\n")
    os.utime(elsewhere / "not-a-plan-of-ours.jsonl", (time.time() - AN_HOUR, time.time() - AN_HOUR))
    assert frozen.prune_plans(drop.settings().state_dir, drop.key) == []
    assert (elsewhere / "not-a-plan-of-ours.jsonl").exists()
