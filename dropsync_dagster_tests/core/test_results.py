"""Step results between assets: bound to their plan, and a full state folder named in one line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropsync_dagster.core.errors import DropsyncError, RefusedError
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.results import ChecksumsResult, FileChecksum, ResultStore
from dropsync_dagster.core.status.sqlite import SqliteStatusStore

DROP = "seq-run_001"


def checksums(files: int) -> ChecksumsResult:
    digest = Digests(size=1, blake3="b" * 64, md5="m" * 32)
    return ChecksumsResult(drop=DROP, files={f"f{i:06d}.fastq.gz": FileChecksum(digests=digest, sidecar="md5")
                                             for i in range(files)})


def test_a_result_of_another_plan_is_refused(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    results.save(DROP, "checksums", checksums(2), plan_id="plan-a")
    assert results.load(DROP, "checksums", ChecksumsResult, "plan-a").plan_id == "plan-a"
    with pytest.raises(RefusedError, match="belongs to plan plan-a, not to this run's plan plan-b"):
        results.load(DROP, "checksums", ChecksumsResult, "plan-b")
    assert results.load_optional(DROP, "checksums", ChecksumsResult, "plan-b") is None


@pytest.fixture
def full_state(tmp_path: Path) -> Iterator[Path]:
    """A state folder on a 64 KiB tmpfs (needs root and mount; skipped without them)."""
    state = tmp_path / "state"
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=True)


def test_a_full_state_folder_names_the_file(full_state: Path) -> None:
    """Defect (issue 11): disk full on the state folder said only "disk I/O error"."""
    with pytest.raises(DropsyncError, match=rf"cannot write the checksums result {full_state}/drops/{DROP}/checksums.json: No space left"):
        ResultStore(full_state).save(DROP, "checksums", checksums(2000))
    assert not [p for p in full_state.rglob("*.tmp")]  # no half-written temporary left
    with pytest.raises(RefusedError, match=rf"status store {full_state}/status.sqlite3: .*no space left on the device holding {full_state}"):
        SqliteStatusStore(full_state / "status.sqlite3").register_many({f"seq-run_{i:06d}": "/drops/" + "x" * 200 for i in range(2000)})
