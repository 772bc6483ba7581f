"""`dropsync sync` runs the plan it showed: handed to its in-process run, not planned again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dropsync_dagster.core.plan.frozen import current_plan_id
from dropsync_dagster.runs import SHOWN_PLAN, hand_over, take_over
from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.test_cli_sync import dropsync, plain_drop


def test_the_plan_that_runs_is_the_plan_dropsync_sync_showed(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1), md5="correct")
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    from dagster._core.instance.ref import InstanceRef  # no public way to open an instance from a folder

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(drop.root.parent / "dagster_home"))) as instance:
        (run,) = instance.get_runs()
        planned = instance.fetch_materializations(dg.AssetKey("drop_manifest"), limit=1).records[0]
    assert planned.asset_materialization.metadata["planned_by"].value == "dropsync sync (the plan it showed)"
    assert run.tags[SHOWN_PLAN] == current_plan_id(drop.settings().state_dir, drop.key)


def test_a_plan_is_taken_over_once_and_only_for_its_own_drop_and_folder(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    plan = drop.plan()
    key, path = plan.drop, plan.drop_path
    assert take_over({SHOWN_PLAN: plan.plan_id}, key, path) is None  # never handed over in this process
    assert take_over(hand_over(plan), "seq-another", path) is None  # another drop: the run plans for itself
    assert take_over({SHOWN_PLAN: plan.plan_id}, key, path) is None  # ... and the plan is gone
    assert take_over(hand_over(plan), key, str(tmp_path / "elsewhere")) is None  # its folder moved since
    tags = hand_over(plan)
    assert take_over(tags, key, path) is plan
    assert take_over(tags, key, path) is None  # once: a retry plans afresh
