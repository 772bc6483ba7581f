"""The hostile-input corpus (issue 10) through the real `dropsync` CLI, one table row per case."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dropsync_dagster_tests.hostile import cases_config, cases_deploy, cases_files, cases_inputs, cases_links
from dropsync_dagster_tests.hostile.harness import Case, check, run_cli, take_before
from dropsync_dagster_tests.hostile.scene import make_scene

CASES: list[Case] = [*cases_links.CASES, *cases_files.CASES, *cases_config.CASES, *cases_inputs.CASES,
                    *cases_deploy.CASES]


def test_the_corpus_is_a_table_of_distinct_explained_cases() -> None:
    ids = Counter(c.id for c in CASES)
    assert [i for i, n in ids.items() if n > 1] == []
    assert all(c.why and c.klass for c in CASES)
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, dagster_home: Path) -> None:
    scene = make_scene(tmp_path, f"run_{case.id}")
    case.arrange(scene)
    scene.write_config()
    before = take_before(scene)
    ran = run_cli(scene, case, dagster_home)
    problems = check(case, scene, before, ran)
    assert not problems, f"{case.id}: {case.why}\n  " + "\n  ".join(problems)
