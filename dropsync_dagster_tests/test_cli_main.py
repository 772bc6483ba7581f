"""The CLI as a package: `dropsync --help` imports no command, `dropsync plan` never imports
Dagster (nor the LabKey client or openpyxl for a drop without them), and `python -m` still works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dropsync_dagster.cli.main import COMMANDS, cli
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config

# Imports the CLI, runs `--help` and then `plan DROP` in one process; prints what got imported.
_PROBE = """
import json, sys
from dropsync_dagster.cli.main import cli
seen = {}
for args in (["--help"], ["plan", sys.argv[1]]):
    try:
        cli(args, standalone_mode=False)
    except SystemExit as stop:
        assert stop.code in (0, None), (args, stop.code)
    seen[args[0]] = sorted(m for m in ("dagster", "labkey", "openpyxl", "requests") if m in sys.modules)
    seen[args[0] + " commands"] = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("dropsync_dagster.cli."))
print(json.dumps(seen))
"""


def test_help_and_plan_do_not_import_dagster(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath())
    drop.mark_ready()
    done = subprocess.run([sys.executable, "-c", _PROBE, str(drop.path)], env=drop.env(PATH="/usr/bin:/bin"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["--help"] == [] and seen["--help commands"] == ["main"]
    assert seen["plan"] == []  # no dagster, and no LabKey client or openpyxl for a drop without them
    assert "sync" not in seen["plan commands"] and "runner" not in seen["plan commands"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_each_command_with_its_own_summary(name: str) -> None:
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.name == name
    assert COMMANDS[name].summary == command.get_short_help_str(limit=1000)


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in COMMANDS)
    unknown = subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", "nope"], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.splitlines() == [
        "dropsync: No such command 'nope'. (see dropsync --help)"]
