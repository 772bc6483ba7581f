"""Asset results and frozen plans on disk: round trips, one-line refusals and validation errors,
parsed once per process, plans streamed as JSON Lines, and a full state folder named in one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropsync_dagster.core.errors import DropsyncError, RefusedError
from dropsync_dagster.core.model import Digests, Plan
from dropsync_dagster.core.plan import frozen
from dropsync_dagster.core.plan.frozen import current_plan_id, iter_entries, plan_path, read_plan, write_plan
from dropsync_dagster.core.result_files import PARSED, ResultFiles
from dropsync_dagster.core.results import ChecksumsResult, FileChecksum
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster_tests.assets.test_metadata_tables import four_file_drop
from dropsync_dagster_tests.support.parsing import forget_parsed, new_process  # noqa: F401 (autouse fixture)

DROP = "seq-run_001"


def checksums(files: int, plan_id: str = "plan-a") -> ChecksumsResult:
    digest = Digests(size=1, blake3="b" * 64, md5="m" * 32)
    return ChecksumsResult(drop=DROP, plan_id=plan_id, files={
        f"f{i:06d}.fastq.gz": FileChecksum(digests=digest, sidecar="md5") for i in range(files)})


def test_a_result_round_trips_as_human_readable_json(tmp_path: Path) -> None:
    files = ResultFiles(tmp_path, DROP)
    path = files.save("drop_checksums", checksums(2))
    assert path == tmp_path / "drops" / DROP / "drop_checksums.json"
    assert json.loads(path.read_text())["plan_id"] == "plan-a" and "\n " in path.read_text()  # indented
    forget_parsed()  # as another process finds it
    assert files.load("drop_checksums", ChecksumsResult, "plan-a") == checksums(2)


def test_a_result_of_another_plan_is_refused_in_one_line(tmp_path: Path) -> None:
    files = ResultFiles(tmp_path, DROP)
    files.save("drop_checksums", checksums(2))
    with pytest.raises(RefusedError, match="belongs to plan plan-a, not to this run's plan plan-b") as refused:
        files.load("drop_checksums", ChecksumsResult, "plan-b")
    assert "\n" not in str(refused.value) and DROP in str(refused.value)
    assert files.load_if_current("drop_checksums", ChecksumsResult, "plan-b") is None
    assert files.load_if_current("drop_checksums", ChecksumsResult, "plan-a") is not None


def test_a_missing_result_says_which_asset_to_materialise(tmp_path: Path) -> None:
    with pytest.raises(DropsyncError, match=f"{DROP}: no drop_checksums result at .*; materialise drop_checksums first"):
        ResultFiles(tmp_path, DROP).load("drop_checksums", ChecksumsResult, "plan-a")


def test_an_invalid_result_is_one_line_naming_the_file_and_field(tmp_path: Path) -> None:
    files = ResultFiles(tmp_path, DROP)
    path = files.save("drop_checksums", checksums(2))
    doc = json.loads(path.read_text())
    del doc["plan_id"]  # a result of an older version, made before every result named its plan
    doc["files"]["f000000.fastq.gz"]["sidecar"] = 5
    path.write_text(json.dumps(doc))
    with pytest.raises(DropsyncError) as invalid:
        files.load("drop_checksums", ChecksumsResult, "plan-a")
    message = str(invalid.value)
    assert "\n" not in message
    assert message.startswith(f"{DROP}: the drop_checksums result at {path} is not valid: ")
    assert "plan_id: Field required (and 1 more)" in message and "materialise drop_checksums again" in message


def test_a_result_is_parsed_once_per_process_until_it_is_replaced(tmp_path: Path) -> None:
    files = ResultFiles(tmp_path, DROP)
    files.save("drop_checksums", checksums(3))
    loaded = [files.load("drop_checksums", ChecksumsResult, "plan-a") for _ in range(5)]  # five steps, one process
    assert all(r is loaded[0] for r in loaded) and PARSED.parses["drop_checksums.json"] == 1
    path = files.path("drop_checksums")
    path.write_text(checksums(1, "plan-b").model_dump_json())  # replaced behind the process's back
    assert len(files.load("drop_checksums", ChecksumsResult, "plan-b").files) == 1
    assert PARSED.parses["drop_checksums.json"] == 2


def big_plan(tmp_path: Path, entries: int) -> Plan:
    """A real plan of a four-file drop, its entries repeated under new names up to `entries`."""
    plan = four_file_drop(tmp_path).plan()
    base = plan.entries
    return plan.model_copy(update={"entries": [
        base[i % len(base)].model_copy(update={"relpath": f"d{i // 1000:03d}/f{i:06d}.fastq.gz"}) for i in range(entries)]})


def test_a_plan_is_frozen_as_json_lines_and_made_current(tmp_path: Path) -> None:
    plan = big_plan(tmp_path, 2000)
    state = tmp_path / "state"
    path = write_plan(state, plan)
    assert path == plan_path(state, plan.drop, plan.plan_id) and path.suffix == ".jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 2000
    header = json.loads(lines[0])
    assert header["plan_id"] == plan.plan_id and "entries" not in header and header["config"]
    assert json.loads(lines[1])["relpath"] == "d000/f000000.fastq.gz"
    assert current_plan_id(state, plan.drop) == plan.plan_id
    current = json.loads((state / "drops" / plan.drop / "drop_manifest.json").read_text())
    assert current == {"drop": plan.drop, "plan_id": plan.plan_id, "created_at": plan.created_at,
                       "entries": 2000, "plan": f"plans/{plan.plan_id}.jsonl"}
    forget_parsed()
    assert read_plan(state, plan.drop, plan.plan_id) == plan


def test_plan_entries_stream_one_line_at_a_time(tmp_path: Path) -> None:
    plan = big_plan(tmp_path, 100_000)
    path = write_plan(tmp_path / "state", plan)
    entries = iter_entries(path)
    first = next(entries)  # the first entry arrives without the rest being read
    assert first == plan.entries[0]
    assert sum(1 for _ in entries) == 99_999


def test_a_plan_is_parsed_once_per_process(tmp_path: Path) -> None:
    plan = big_plan(tmp_path, 500)
    state = tmp_path / "state"
    write_plan(state, plan)
    assert read_plan(state, plan.drop, plan.plan_id) is plan  # the process that froze it parses nothing
    forget_parsed()
    loaded = [read_plan(state, plan.drop, plan.plan_id) for _ in range(5)]  # five steps, one process
    assert all(p is loaded[0] for p in loaded) and loaded[0] == plan
    assert sum(frozen.PARSED_PLANS.parses.values()) == 1


def test_a_damaged_plan_names_its_line(tmp_path: Path) -> None:
    plan = big_plan(tmp_path, 10)
    state = tmp_path / "state"
    path = write_plan(state, plan)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace('"matched":true', '"matched":"perhaps"')
    path.write_text("\n".join(lines) + "\n")
    forget_parsed()
    with pytest.raises(DropsyncError, match=rf"the frozen plan {path} is not valid at line 5: matched: ") as damaged:
        read_plan(state, plan.drop, plan.plan_id)
    assert "\n" not in str(damaged.value)
    with pytest.raises(DropsyncError, match=f"{plan.drop}: plan nope is not in"):
        read_plan(state, plan.drop, "nope")
    with pytest.raises(DropsyncError, match="no plan at .*; materialise drop_manifest first"):
        current_plan_id(state, "seq-other")


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
    with pytest.raises(DropsyncError, match=rf"{DROP}: cannot write the drop_checksums result {full_state}/drops/{DROP}/drop_checksums.json: No space left"):
        ResultFiles(full_state, DROP).save("drop_checksums", checksums(2000))
    assert not [p for p in full_state.rglob("*.tmp")]  # no half-written temporary left
    with pytest.raises(RefusedError, match=rf"status store {full_state}/status.sqlite3: .*no space left on the device holding {full_state}"):
        SqliteStatusStore(full_state / "status.sqlite3").register_many({f"seq-run_{i:06d}": "/drops/" + "x" * 200 for i in range(2000)})



def test_a_result_changed_after_it_was_recorded_is_written_as_returned(tmp_path: Path) -> None:
    """Defect found on the Celery executor: the final labkey_records result was taken for its last
    progress record (the same object) and not written; the next step's process read `complete: false`."""
    files = ResultFiles(tmp_path, DROP)
    result = checksums(1)
    files.save("drop_checksums", result)  # a progress record
    result.seconds = 2.5  # the step goes on with the same object
    files.save("drop_checksums", result)  # what it returns
    forget_parsed()  # the next step, in another process
    assert files.load("drop_checksums", ChecksumsResult, "plan-a").seconds == 2.5
