"""`repository_copies` writes only where it was planned to, reads only the planned file, and
never reopens a temporary: links planted after planning, hard links at temporary names, kills
between publish and unlink, and the copies' permission bits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.steps.drop_checksums import compute_checksums
from dropsync_dagster.core.steps.repository_copies import copy_files
from dropsync_dagster.core.integrity.publish import CopyOutcome, copy_verified
from dropsync_dagster.core.integrity.hashing import hash_file
from dropsync_dagster.core.model import Reason
from dropsync_dagster_tests.support.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.support.write_path import (
    FILES, canary, put, run_steps, run_with_planted_link, simple_drop, snapshot, temps,
)


pytestmark = pytest.mark.usefixtures("no_hooks")


def test_symlink_planted_in_the_repository_after_planning_is_never_written_through(tmp_path: Path) -> None:
    drop, run = run_with_planted_link(tmp_path, lambda drop, _: drop.repository / "d")
    assert {rel: c.outcome for rel, c in run.copies.files.items()} == {
        "d/a.bin": "unsafe_path", "d/b.bin": "unsafe_path", "e/c.bin": "copied"}
    assert {rel: m.label for rel, m in run.originals.files.items()} == {
        "d/a.bin": "held:unsafe_path", "d/b.bin": "held:unsafe_path", "e/c.bin": "moved"}
    assert (drop.path / "d/a.bin").read_bytes() == FILES["d/a.bin"]
    assert (drop.repository / "e/c.bin").read_bytes() == FILES["e/c.bin"]


def test_symlinked_folder_inside_the_repository_is_still_written(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    (drop.repository / "real").mkdir()
    (drop.repository / "d").symlink_to("real")
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "copied"
    assert (drop.repository / "real" / "a.bin").read_bytes() == FILES["d/a.bin"]


def test_source_swapped_for_a_symlink_after_hashing_is_held_never_copied(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    source = drop.path / "d/a.bin"

    def swap(**_: object) -> None:
        source.unlink()
        source.symlink_to(outside / "secret-a.bin")  # same size, root-only

    testhooks.install("hashed", swap)
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "changed_since_plan"
    assert run.originals.files["d/a.bin"].label == "held:changed_since_plan"
    assert not (drop.repository / "d/a.bin").exists()
    assert (drop.repository / "d/b.bin").read_bytes() == FILES["d/b.bin"]
    assert (outside / "secret-a.bin").read_bytes() == b"S" * 5000


def test_source_replaced_by_another_file_of_the_same_size_and_content_is_held(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    source = drop.path / "d/a.bin"

    def replace(**_: object) -> None:
        st = source.stat()
        source.rename(source.with_name("kept.bin"))  # kept: its inode number cannot be reused
        source.write_bytes(FILES["d/a.bin"])  # a new inode, same bytes and mtime
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))

    testhooks.install("hashed", replace)
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "changed_since_plan"
    assert run.copies.files["d/b.bin"].outcome == "copied"


def test_hard_link_planted_at_a_temporary_name_never_truncates_its_file(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    before = snapshot(outside)
    folder = drop.repository / "d"
    folder.mkdir()
    # The names a temporary for d/a.bin had (fixed) and has (run-unique: its prefix).
    os.link(outside / "secret-a.bin", folder / ".a.bin.dropsync-tmp")
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "copied"
    assert (folder / "a.bin").read_bytes() == FILES["d/a.bin"]
    assert snapshot(outside)["secret-a.bin"][3] == before["secret-a.bin"][3]
    assert temps(drop.repository) == []  # the planted name was swept, never opened
    assert (outside / "secret-a.bin").stat().st_nlink == 1


_KILLED_AT_PUBLISH = """
import sys
from pathlib import Path
import os
from dropsync_dagster.core import testhooks
from dropsync_dagster.core.integrity.publish import copy_verified
from dropsync_dagster.core.model import Digests
from dropsync_dagster.deployment import hook_commands_from_env
testhooks.install_commands(hook_commands_from_env(os.environ))  # an entry point, as the CLI's main
source, target = Path(sys.argv[1]), Path(sys.argv[2])
copy_verified(source, target, Digests.model_validate_json(sys.argv[3]), "blake3")
"""


def test_kill_between_publish_and_unlink_then_another_copy_never_rewrites_the_file(tmp_path: Path) -> None:
    source = put(tmp_path / "drop" / "a.bin", b"first" * 1000)
    target = put(tmp_path / "repo" / "keep.txt", b"").with_name("t.bin")
    env = {**os.environ, testhooks.ENV: json.dumps({"published": "kill -KILL $DROPSYNC_HOOK_PID"})}
    digests = hash_file(source, want_md5=False)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AT_PUBLISH, str(source), str(target), digests.model_dump_json()], env=env
    )
    assert proc.returncode == -signal.SIGKILL
    (left,) = [t for t in temps(target.parent) if t.samefile(target)]
    assert target.stat().st_nlink == 2  # the temporary is the published file's second name
    # Another drop stages the same target: its temporary is new, the file is never rewritten.
    other = tmp_path / "drop" / "other.bin"
    other.write_bytes(b"other" * 1000)
    assert copy_verified(other, target, hash_file(other, want_md5=False), "blake3") == CopyOutcome.TARGET_CONFLICT
    assert target.read_bytes() == b"first" * 1000
    # The re-run finds its copy already there; no temporary remains, the file has one link.
    assert copy_verified(source, target, digests, "blake3") == CopyOutcome.ALREADY_SYNCED
    assert temps(target.parent) == [] and target.stat().st_nlink == 1


@pytest.mark.parametrize(("mode", "want"), [(0o600, 0o600), (0o640, 0o640), (0o4755, 0o755), (0o2775, 0o775)])
def test_copies_keep_the_source_permission_bits_never_wider(tmp_path: Path, mode: int, want: int) -> None:
    drop = simple_drop(tmp_path)
    (drop.path / "d/a.bin").chmod(mode)
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "copied"
    assert (drop.repository / "d/a.bin").stat().st_mode & 0o7777 == want
    assert (drop.repository / "d/a.bin.blake3").stat().st_mode & 0o7777 == want


def test_file_mode_setting_fixes_the_copies_mode(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    (drop.path / "d/a.bin").chmod(0o644)
    plan = drop.plan()
    settings = drop.settings(DROPSYNC_FILE_MODE="0640")
    checksums = compute_checksums(plan)
    copies = copy_files(plan, checksums, settings)
    assert copies.files["d/a.bin"].outcome == "copied"
    assert (drop.repository / "d/a.bin").stat().st_mode & 0o7777 == 0o640


def test_target_name_too_long_for_its_sidecar_is_held_bad_name(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"x" * 10)
    target = tmp_path / "repo" / ("t" * 250)
    assert copy_verified(source, target, hash_file(source, False), "blake3") == CopyOutcome.BAD_NAME
    assert not target.exists()
    assert Reason(CopyOutcome.BAD_NAME) is Reason.BAD_NAME
