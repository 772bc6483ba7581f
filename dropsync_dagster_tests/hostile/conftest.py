"""Fixtures of the hostile corpus: one Dagster home per xdist worker (cases use distinct drops)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAGSTER_HOME shared by this worker's CLI runs: creating its SQLite storage costs ~1 s."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home
