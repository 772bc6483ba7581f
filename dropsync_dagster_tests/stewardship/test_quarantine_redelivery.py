"""A quarantined original delivered again, moves into and out of quarantine cut short by a kill,
and a run that lost the drop: nothing in quarantine is deleted on a guess, a file known not to
match its `.md5` is never synced, and re-running completes."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import blake3
import dagster as dg
import pytest

from dropsync_dagster.core.integrity import moves

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.stewardship.quarantine_return import return_due
from dropsync_dagster_tests.stewardship.test_quarantine import BAD, files_in, quarantine_drop, storage, with_quarantine
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.test_cli_sync import target


def redeliver(path: Path, data: bytes) -> None:
    """What a collaborator's upload does: the file again, then its (now right) `.md5`."""
    path.write_bytes(data)
    correct_md5(path, data)


def correct_md5(path: Path, data: bytes) -> None:
    Path(f"{path}.md5").write_text(f"{hashlib.md5(data).hexdigest()}  {path.name}\n")


@pytest.mark.parametrize("extra", [b"", b"@the rest of the read, the first upload was cut short\n"])
def test_a_file_delivered_again_is_synced_and_the_quarantined_copy_stays(tmp_path: Path, extra: bytes) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    old = (drop.path / BAD).read_bytes()
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        redeliver(drop.path / BAD, old + extra)
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert target(drop, 1).read_bytes() == old + extra and (drop.processed / BAD).read_bytes() == old + extra
    held = quarantine / drop.key / BAD
    assert held.read_bytes() == old and Path(f"{held}.quarantine.json").exists()  # for a person to compare


def test_a_link_at_the_place_of_a_quarantined_file_is_not_taken_for_it(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        held = quarantine / drop.key / BAD
        os.symlink(held, drop.path / BAD)  # the same bytes, through a link: hostile, not a re-delivery
        run_job(drop, instance, storage=storage(drop, env))
    assert held.exists() and Path(f"{held}.quarantine.json").exists()
    assert not target(drop, 1).exists()


def test_a_move_into_quarantine_cut_short_is_finished_and_the_file_not_synced(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    held = quarantine / drop.key / BAD
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        wrong = Path(f"{held}.md5").read_bytes()
        os.link(held, drop.path / BAD)  # killed after the sidecars moved, before the drop's name was unlinked
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert not target(drop, 1).exists() and not (drop.processed / BAD).exists()  # bytes known not to match
    assert not (drop.path / BAD).exists()  # the move is finished
    assert Path(f"{held}.md5").read_bytes() == wrong and Path(f"{held}.quarantine.json").exists()


def test_a_move_back_cut_short_is_finished_and_the_file_synced(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    held = quarantine / drop.key / BAD
    data = (drop.path / BAD).read_bytes()
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        correct_md5(drop.path / BAD, data)
        os.unlink(f"{held}.md5")  # the state a kill leaves in the move back: the superseded sidecar gone,
        os.link(held, drop.path / BAD)  # the file linked to its place, the quarantine name not yet unlinked
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert target(drop, 1).read_bytes() == data and (drop.processed / BAD).read_bytes() == data
    assert files_in(quarantine) == []


def test_a_run_that_lost_the_drop_moves_nothing_out_of_quarantine(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    data = (drop.path / BAD).read_bytes()
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
    correct_md5(drop.path / BAD, data)

    def lost() -> None:
        raise RefusedError(f"drop {drop.key}: another run holds it")

    with pytest.raises(RefusedError, match="another run holds it"):
        return_due(quarantine, drop.key, drop.path, guard=lost)
    held = quarantine / drop.key / BAD
    assert held.read_bytes() == data and Path(f"{held}.md5").exists() and Path(f"{held}.quarantine.json").exists()
    assert not (drop.path / BAD).exists()


class _CutAt:
    """Stands in for `os` in core/integrity/moves.py: the `n`-th unlink of a name of `file`
    fails as a power cut would stop it (everything before it done, nothing after)."""

    def __init__(self, file: str, n: int) -> None:
        self.file, self.n, self.calls = file, n, 0

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def unlink(self, path: str, *, dir_fd: int | None = None) -> None:
        if Path(path).name.startswith(self.file):
            self.calls += 1
            if self.calls == self.n:
                raise OSError(errno.EIO, f"power cut before unlinking {path}")
        os.unlink(path, dir_fd=dir_fd)


@pytest.mark.parametrize("where", ["same_filesystem", "dev_shm"])
@pytest.mark.parametrize("cut_at", [1, 2, 3])
def test_a_move_into_quarantine_cut_at_any_unlink_never_syncs_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, cut_at: int) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    if where == "dev_shm" and Path("/dev/shm").is_dir():  # another filesystem here: moved by a verified copy
        quarantine = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="dropsync-test-"))
    env = with_quarantine(drop, quarantine)
    source, held = drop.path / BAD, quarantine / drop.key / BAD
    data, wrong = source.read_bytes(), Path(f"{source}.md5").read_bytes()
    # A `.blake3` too (as an earlier run writes before the `.md5` arrives): three names to unlink.
    Path(f"{source}.blake3").write_text(f"{blake3.blake3(data).hexdigest()}  {source.name}\n")
    try:
        with dg.instance_for_test() as instance:
            monkeypatch.setattr(moves, "os", _CutAt(source.name, cut_at))
            cut = run_job(drop, instance, storage=storage(drop, env))
            monkeypatch.undo()
            assert not cut.success  # the step stopped at that unlink
            assert run_job(drop, instance, storage=storage(drop, env)).success
        assert not target(drop, 1).exists() and not (drop.processed / BAD).exists()  # bytes known to be wrong
        assert not source.exists() and held.read_bytes() == data and Path(f"{held}.md5").read_bytes() == wrong
        for kind in ("md5", "blake3"):  # a sidecar the cut left in the drop is the collaborator's, kept as it was
            left = Path(f"{source}.{kind}")
            assert not left.exists() or left.read_bytes() == Path(f"{held}.{kind}").read_bytes()
        assert Path(f"{held}.quarantine.json").exists() and Path(f"{held}.blake3").exists()
    finally:
        if quarantine.is_relative_to("/dev/shm"):
            shutil.rmtree(quarantine)


def test_a_sidecar_a_cut_left_in_the_drop_still_checks_a_file_delivered_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    source = drop.path / BAD
    with dg.instance_for_test() as instance:
        monkeypatch.setattr(moves, "os", _CutAt(source.name, 2))  # the data name went, the `.md5` stayed
        assert not run_job(drop, instance, storage=storage(drop, env)).success
        monkeypatch.undo()
        assert run_job(drop, instance, storage=storage(drop, env)).success
        assert Path(f"{source}.md5").exists() and not source.exists()
        source.write_bytes(b"@another upload, as damaged as the first\n")  # its (wrong) `.md5` is already there
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert not target(drop, 1).exists() and not (drop.processed / BAD).exists()  # held: it fails that `.md5`
    assert source.exists()
