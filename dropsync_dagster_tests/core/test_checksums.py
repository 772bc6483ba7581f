"""`drop_checksums` reads only the planned files, never blocks on a FIFO or follows a link, and
holds one odd file (a swapped source, a bad sidecar) without failing the drop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dropsync_dagster.core.steps.drop_checksums import compute_checksums
from dropsync_dagster.core.model import Reason
from dropsync_dagster_tests.support.drops import Drop
from dropsync_dagster_tests.support.write_path import FILES, canary, run_steps, simple_drop


def _swap(source: Path, how: str, outside: Path) -> None:
    # Kept aside (except "deleted"): a freed inode number could be reused by the new file.
    if how == "deleted":
        source.unlink()
    else:
        source.rename(source.with_name("kept-aside"))
    if how == "symlink_to_secret":
        source.symlink_to(outside / "secret-a.bin")  # same size, root-only
    elif how == "symlink_to_dev_zero":
        source.symlink_to("/dev/zero")
    elif how == "fifo":
        os.mkfifo(source)
    elif how == "same_size_new_file":
        source.write_bytes(b"N" * len(FILES["d/a.bin"]))


@pytest.mark.parametrize("how", ["symlink_to_secret", "symlink_to_dev_zero", "fifo", "deleted", "same_size_new_file"])
def test_source_swapped_after_planning_is_held_and_never_read(tmp_path: Path, how: str) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    plan = drop.plan()
    _swap(drop.path / "d/a.bin", how, outside)
    run = run_steps(drop, plan)
    assert run.checksums.files["d/a.bin"].reason is Reason.CHANGED_SINCE_PLAN
    assert run.checksums.files["d/a.bin"].digests is None
    assert run.originals.files["d/a.bin"].label == "held:changed_since_plan"
    assert not (drop.repository / "d/a.bin").exists() and not (drop.path / "d/a.bin.blake3").exists()
    assert (drop.repository / "d/b.bin").read_bytes() == FILES["d/b.bin"]
    assert run.originals.files["d/b.bin"].label == "moved"


def _bad_sidecar(path: Path, how: str, outside: Path) -> None:
    if how == "garbage":
        path.write_bytes(b"\x00\xffnot a digest\n")
    elif how == "two_entries":
        path.write_text(f"{'0' * 32}  a.bin\n{'1' * 32}  a.bin\n")
    elif how == "oversized":
        path.write_bytes(b"0" * (1 << 20))
    elif how == "symlink":
        path.symlink_to(outside / "secret-a.bin")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "folder":
        path.mkdir()


@pytest.mark.parametrize("kind", ["md5", "blake3"])
@pytest.mark.parametrize("how", ["garbage", "two_entries", "oversized", "symlink", "fifo", "folder"])
def test_a_bad_sidecar_holds_its_file_and_the_drop_goes_on(tmp_path: Path, kind: str, how: str) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    _bad_sidecar(drop.path / f"d/a.bin.{kind}", how, outside)
    run = run_steps(drop)
    assert run.checksums.files["d/a.bin"].reason is Reason.BAD_SIDECAR
    assert run.originals.files["d/a.bin"].label == "held:bad_sidecar"
    assert (drop.path / "d/a.bin").read_bytes() == FILES["d/a.bin"]
    assert run.originals.files["d/b.bin"].label == "moved"
    assert (outside / "secret-a.bin").read_bytes() == b"S" * 5000


def test_hashing_records_the_identity_the_move_checks(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    checksums = compute_checksums(drop.plan())
    st = (drop.path / "d/a.bin").stat()
    identity = checksums.files["d/a.bin"].identity
    assert identity is not None
    assert (identity.device, identity.inode, identity.size, identity.ctime) == (st.st_dev, st.st_ino, 5000, st.st_ctime)


def test_a_drop_folder_swapped_for_a_link_after_planning_gets_no_sidecar_outside(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    plan = drop.plan()
    real = drop.path / "d"
    real.rename(drop.path / "d-moved")
    (outside / "a.bin").write_bytes(FILES["d/a.bin"])
    real.symlink_to(outside)
    checksums = compute_checksums(plan)
    assert checksums.files["d/a.bin"].reason is Reason.CHANGED_SINCE_PLAN  # another inode
    assert not (outside / "a.bin.blake3").exists()


def test_dead_temporaries_in_the_drop_are_swept_even_when_no_sidecar_is_written(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    plan = drop.plan()
    compute_checksums(plan)  # writes every .blake3
    stale = drop.path / "d" / ".a.bin.blake3.dropsync-tmp-deadbeef-0000"
    stale.write_bytes(b"half a sidecar")
    compute_checksums(plan)  # nothing to write now
    assert not stale.exists()


_STEPS_WITHOUT_PRIVILEGES = """
import json, sys
from pathlib import Path
from dropsync_dagster.core.syncyml.schema import load_config
from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.plan.planner import make_plan
from dropsync_dagster.deployment import settings_from_env
from dropsync_dagster_tests.support.write_path import run_steps
drop = DropFolder(sys.argv[1], "seq", Path(sys.argv[2]))
settings = settings_from_env(json.loads(sys.argv[3]))
class _Drop:  # what run_steps needs of a test Drop
    def plan(self): return make_plan(drop, load_config(drop.path / "sync.yml"), settings)
    def settings(self): return settings
run = run_steps(_Drop())
print(json.dumps({rel: m.label for rel, m in run.originals.files.items()}))
"""


def _steps_without_privileges(drop: Drop) -> subprocess.CompletedProcess:
    """The write path run by a process that cannot read past permission bits, as a user's would."""
    return subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", _STEPS_WITHOUT_PRIVILEGES,
         drop.key, str(drop.path), json.dumps(drop.env())],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv(1) to drop root's read-anything capability")
def test_unreadable_file_and_folder_are_held_and_the_drop_goes_on(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path, {**FILES, "f/x.bin": b"X" * 10})
    (drop.path / "d/a.bin").chmod(0)
    (drop.path / "f").chmod(0)
    try:
        proc = _steps_without_privileges(drop)
    finally:
        (drop.path / "f").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "d/a.bin": "held:unreadable", "d/b.bin": "moved", "e/c.bin": "moved", "f": "held:unreadable"}
    assert (drop.path / "d/a.bin").exists() and (drop.path / "f/x.bin").exists()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv(1) to drop root's read-anything capability")
def test_files_of_a_listable_but_unsearchable_folder_are_held_and_the_drop_goes_on(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path, {**FILES, "f/x.bin": b"X" * 10})
    (drop.path / "f").chmod(0o644)  # listed, but no entry can be stat'ed or opened
    try:
        proc = _steps_without_privileges(drop)
    finally:
        (drop.path / "f").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "d/a.bin": "moved", "d/b.bin": "moved", "e/c.bin": "moved", "f/x.bin": "held:unreadable"}
    assert (drop.path / "f/x.bin").read_bytes() == b"X" * 10
