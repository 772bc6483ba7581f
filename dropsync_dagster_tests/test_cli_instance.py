"""CLI processes sharing a fresh DAGSTER_HOME: the first-time instance creation is serialised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dropsync_dagster_tests.support.drops import make_drop

RACERS = 4


def test_cli_processes_racing_on_a_fresh_dagster_home_all_succeed(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.mark_ready()
    home = tmp_path / "fresh_dagster_home"  # nothing in it yet: every racer would create its storage
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(home)}
    racers = [subprocess.Popen([sys.executable, "-m", "dropsync_dagster.cli", "register", str(drop.root)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(RACERS)]
    done = [(p.wait(timeout=180), *p.communicate()) for p in racers]
    for code, out, err in done:
        assert (code, err) == (0, ""), err
        assert "drops:" in out
