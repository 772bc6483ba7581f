"""`archived_originals` moves an original only while it is the file that was hashed, and only
into the processed folder: links planted there after planning, sources changed after their copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.integrity.hashing import hash_file
from dropsync_dagster.core.integrity.moves import MoveItem, MoveOutcome, move_originals
from dropsync_dagster.core.drops.reads import identity_of
from dropsync_dagster_tests.support.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.support.write_path import FILES, put, run_steps, run_with_planted_link, simple_drop


pytestmark = pytest.mark.usefixtures("no_hooks")


def test_symlink_planted_in_processed_after_planning_never_sends_originals_out(tmp_path: Path) -> None:
    # processed/<...>/d, the folder of d/a.bin's destination
    drop, run = run_with_planted_link(tmp_path, lambda _, plan: Path(plan.entries[0].processed).parent)
    assert {rel: m.label for rel, m in run.originals.files.items()} == {
        "d/a.bin": "held:unsafe_path", "d/b.bin": "held:unsafe_path", "e/c.bin": "moved"}
    assert (drop.path / "d/a.bin").read_bytes() == FILES["d/a.bin"]
    assert (drop.path / "d/a.bin.blake3").exists()
    assert not (drop.path / "e/c.bin").exists()


@pytest.mark.parametrize("change", ["append", "rewrite_same_size", "replace", "chmod"])
def test_original_changed_after_its_copy_is_held_never_moved(tmp_path: Path, change: str) -> None:
    drop = simple_drop(tmp_path)
    source = drop.path / "d/a.bin"

    def alter(path: Path, **_: object) -> None:
        if path != source:
            return
        if change == "append":
            with open(source, "ab") as f:
                f.write(b"late bytes")
        elif change == "rewrite_same_size":
            source.write_bytes(b"Z" * len(FILES["d/a.bin"]))
        elif change == "replace":
            source.unlink()
            source.write_bytes(FILES["d/a.bin"])
        else:
            source.chmod(0o600)

    testhooks.install("before_move", alter)
    run = run_steps(drop)
    assert run.copies.files["d/a.bin"].outcome == "copied"
    assert run.originals.files["d/a.bin"].label == "held:changed_after_copy"
    assert source.exists() and (drop.path / "d/a.bin.blake3").exists()
    assert not Path(run.plan.entries[0].processed).exists()
    assert (drop.repository / "d/a.bin").read_bytes() == FILES["d/a.bin"]
    assert run.originals.files["d/b.bin"].label == "moved"


def test_sidecar_turned_into_a_fifo_before_the_move_is_held_and_nothing_hangs(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    sidecar = drop.path / "d/a.bin.blake3"

    def fifo(path: Path, **_: object) -> None:
        if path == drop.path / "d/a.bin":
            sidecar.unlink()
            os.mkfifo(sidecar)

    testhooks.install("before_move", fifo)
    run = run_steps(drop)
    assert run.originals.files["d/a.bin"].label == "held:changed_after_copy"
    assert run.originals.files["d/b.bin"].label == "moved"


def test_rerun_after_a_kill_between_link_and_unlink_finishes_the_move(tmp_path: Path) -> None:
    source = put(tmp_path / "drop" / "a.bin", b"data" * 100)
    identity = identity_of(source.stat())
    dest = tmp_path / "processed" / "a.bin"
    dest.parent.mkdir()
    os.link(source, dest)  # the kill happened here: this link changed the source's ctime
    item = MoveItem(source, dest, hash_file(source, False), identity, source.parent, dest.parent)
    assert move_originals([item]) == [MoveOutcome.MOVED]
    assert not source.exists() and dest.stat().st_nlink == 1


def test_processed_temporaries_of_dead_writers_are_swept(tmp_path: Path) -> None:
    source = put(tmp_path / "drop" / "a.bin", b"data" * 100)
    stale = put(tmp_path / "processed" / ".a.bin.dropsync-tmp-deadbeef-0000", b"half")
    dest = stale.with_name("a.bin")
    assert move_originals([(source, dest, hash_file(source, False))]) == [MoveOutcome.MOVED]
    assert not stale.exists()


def test_a_sidecar_that_cannot_follow_leaves_its_original_in_the_drop(tmp_path: Path) -> None:
    # Disk full on the processed folder fails the sidecar's write; here a folder takes its name.
    drop, processed = tmp_path / "drop", tmp_path / "processed"
    source = put(drop / "a.bin", b"original bytes")
    digests = hash_file(source, False)
    put(drop / "a.bin.blake3", f"{digests.blake3}  a.bin\n".encode())
    (processed / "a.bin.blake3").mkdir(parents=True)
    with pytest.raises(DropsyncError, match=f"a.bin to {processed}"):
        move_originals([MoveItem(source, processed / "a.bin", digests)])
    assert source.read_bytes() == b"original bytes"
    assert (drop / "a.bin.blake3").read_text() == f"{digests.blake3}  a.bin\n"
    (processed / "a.bin.blake3").rmdir()  # space is back: the re-run finishes the move
    assert move_originals([MoveItem(source, processed / "a.bin", digests)]) == [MoveOutcome.MOVED]
    assert not source.exists() and not (drop / "a.bin.blake3").exists()
    assert (processed / "a.bin.blake3").read_text() == f"{digests.blake3}  a.bin\n"
