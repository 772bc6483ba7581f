"""Quarantine notes as the sensor, the status command and the steps read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.stewardship.quarantine import quarantined


def test_only_noted_files_are_listed_and_a_damaged_note_is_one_line(tmp_path: Path) -> None:
    assert quarantined(None, "seq-run_a") == [] and quarantined(tmp_path, "seq-run_a") == []
    held = tmp_path / "seq-run_a" / "x" / "a.fastq.gz"
    held.parent.mkdir(parents=True)
    held.write_bytes(b"a")
    Path(f"{held}.quarantine.json").write_text('{"drop": "seq-run_a"')  # cut short
    with pytest.raises(DropsyncError) as info:
        quarantined(tmp_path, "seq-run_a")
    assert str(info.value).startswith(f"quarantine note {held}.quarantine.json is damaged (")
    assert len(str(info.value).splitlines()) == 1
    held.unlink()  # a note whose file went back (removed right after the move): not listed
    assert quarantined(tmp_path, "seq-run_a") == []
