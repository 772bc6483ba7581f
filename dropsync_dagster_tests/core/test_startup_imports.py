"""What every run pays at start-up: modules only some drops need are imported only then."""

from __future__ import annotations

import subprocess
import sys


def test_a_run_without_an_excel_source_never_imports_openpyxl():
    code = ("import sys, dropsync_dagster.definitions, dropsync_dagster.cli.sync, dropsync_dagster.core.plan.metadata_sources; "
            "print('openpyxl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # ~0.13 CPU s of every `dropsync sync` otherwise
