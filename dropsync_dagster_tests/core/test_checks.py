"""The blocking checks prove what they name, over the plan and the step results: a link planted
on disk after planning is the writes' business (each is confined when it happens), never a
crash of the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.integrity.checks import copy_problems, target_problems
from dropsync_dagster_tests.support.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.support.write_path import FILES, canary, run_steps, simple_drop

pytestmark = pytest.mark.usefixtures("no_hooks")


def test_targets_check_passes_when_a_link_is_planted_in_the_repository_after_planning(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    plan = drop.plan()
    (drop.repository / "d").symlink_to(canary(tmp_path))
    assert target_problems(plan) == []
    run = run_steps(drop, plan)
    assert run.copies.files["d/a.bin"].outcome == "unsafe_path"  # held where it is written


def test_targets_check_finds_duplicates_and_targets_lexically_outside(tmp_path: Path) -> None:
    plan = simple_drop(tmp_path).plan()
    a, b, c = plan.entries
    repository = Path(plan.repository_folder)
    bad = plan.model_copy(update={"entries": [
        a, b.model_copy(update={"target": a.target}), c.model_copy(update={"target": str(repository / "e/../../x")}),
    ]})
    assert target_problems(bad) == [f"{a.target}: planned 2 times", f"{repository}/e/../../x: outside {repository}"]


def test_copies_check_passes_when_a_target_folder_is_swapped_for_a_link_before_publish(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)

    def swap(path: Path, **_: object) -> None:
        if path.name == "a.bin":
            path.parent.rename(path.parent.with_name("d.moved"))
            path.parent.symlink_to(outside)

    testhooks.install("before_publish", swap)
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "unsafe_path"  # its copy is not at its target
    assert run.copies.files["e/c.bin"].outcome == "copied"
    assert copy_problems(run.copies, run.checksums) == []
    assert (drop.path / "d/a.bin").read_bytes() == FILES["d/a.bin"]  # held in the drop
