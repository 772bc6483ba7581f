"""The blocking checks prove what they name, over the plan and the step results: a link planted
on disk after planning is the writes' business (each is confined when it happens), never a
crash of the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core.checks import target_problems
from dropsync_dagster_tests.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.write_path import canary, run_steps, simple_drop

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
