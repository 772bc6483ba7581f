"""The state folder (plans, results) and the SQLite status database are the service account's alone."""

from __future__ import annotations

from pathlib import Path

from dropsync_dagster.core.result_files import ResultFiles
from dropsync_dagster.core.results import ChecksumsResult
from dropsync_dagster.core.status.opening import sqlite_store


def test_state_folder_is_0700_and_the_status_database_0600(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = sqlite_store(state)
    store.put_files("seq-drop", [])
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / store.path.name).stat().st_mode & 0o777 == 0o600
    assert all(p.stat().st_mode & 0o077 == 0 for p in state.iterdir() if p.name.startswith(store.path.name))


def test_results_tighten_a_state_folder_made_world_readable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    ResultFiles(state, "seq-drop").save("drop_checksums", ChecksumsResult(drop="seq-drop", plan_id="plan-a"))
    assert state.stat().st_mode & 0o777 == 0o700
