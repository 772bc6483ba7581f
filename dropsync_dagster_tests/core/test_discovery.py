"""Discovery: partition keys, drops under roots, readiness, candidate files, glob semantics."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dropsync_dagster.core.drops.discovery import (
    DropFolder,
    Readiness,
    candidate_files,
    drop_key,
    fingerprint,
    glob_regex,
    list_drops,
    readiness,
    resolve_drop,
)
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.model import Reason
from dropsync_dagster.core.settings import DropRoot, Settings
from dropsync_dagster.deployment import settings_from_env
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config

READY = (".ready", ".metadata_rsync_exitcode")


@pytest.mark.parametrize(
    ("root", "folder", "key"),
    [
        ("seq", "run_2026-11-20", "seq-run_2026-11-20"),
        ("seq", "Run 7 (Lübeck)", "seq-Run_7__L_beck_"),
        ("my root", "a/b", "my_root-a_b"),
        ("seq", "..", "seq-__"),
        ("seq", "a...b", "seq-a__.b"),
    ],
)
def test_drop_key_is_sanitised(root: str, folder: str, key: str) -> None:
    assert drop_key(root, folder) == key
    assert ".." not in key


def test_list_drops_only_folders_with_sync_yml(tmp_path: Path) -> None:
    drop = make_drop(tmp_path, "run1")
    (drop.root / "no_config").mkdir()
    (drop.root / "stray.txt").write_text("x")
    (drop.root / "linked").symlink_to(drop.path)  # a link to a drop is not a second drop
    make_drop(tmp_path, "run0")
    roots = (DropRoot("seq", drop.root), DropRoot("gone", tmp_path / "missing"))
    assert list_drops(roots) == [
        DropFolder("seq-run0", "seq", drop.root / "run0"),
        DropFolder("seq-run1", "seq", drop.root / "run1"),
    ]


def test_keys_colliding_after_sanitising_are_an_error(tmp_path: Path) -> None:
    make_drop(tmp_path, "run 1")
    drop = make_drop(tmp_path, "run_1")
    with pytest.raises(ConfigError, match="both map to partition key 'seq-run_1'"):
        list_drops((DropRoot("seq", drop.root),))


def test_keys_colliding_across_roots_are_an_error(tmp_path: Path) -> None:
    a = make_drop(tmp_path / "a", "x-y", root_name="r")
    b = make_drop(tmp_path / "b", "y", root_name="r-x")
    with pytest.raises(ConfigError, match="partition key 'r-x-y'"):
        list_drops((DropRoot("r", a.root), DropRoot("r-x", b.root)))


def test_resolve_drop_by_path_and_by_key(tmp_path: Path) -> None:
    drop = make_drop(tmp_path, "run1")
    settings = drop.settings()
    assert resolve_drop(settings, str(drop.path)) == drop.folder()
    assert resolve_drop(settings, drop.key) == drop.folder()
    assert drop.key == "seq-run1"
    outside = make_drop(tmp_path / "other", "run2")  # not under a configured root
    assert resolve_drop(settings, str(outside.path)) == DropFolder("drops-run2", "drops", outside.path)
    with pytest.raises(ConfigError, match="nope: neither a drop folder nor the key"):
        resolve_drop(settings, "nope")


def test_readiness_sentinels(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    assert readiness(drop.path, READY, None) is Readiness.WAITING
    drop.mark_ready()
    assert readiness(drop.path, READY, None) is Readiness.READY


@pytest.mark.parametrize(("content", "state"), [("0", "ready"), ("0\n", "ready"), ("1", "transfer_failed"),
                                                ("23\n", "transfer_failed"), ("", "transfer_failed")])
def test_rsync_exitcode_sentinel(tmp_path: Path, content: str, state: str) -> None:
    drop = make_drop(tmp_path)
    drop.mark_ready(rsync_exitcode=content)
    assert readiness(drop.path, READY, None) == state


def test_failed_rsync_wins_over_a_ready_sentinel(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.mark_ready()
    drop.mark_ready(rsync_exitcode="12")
    assert readiness(drop.path, READY, None) is Readiness.TRANSFER_FAILED


def test_a_sentinel_is_the_drops_own_small_regular_file(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    outside = tmp_path / "zero"
    outside.write_text("0\n")
    (drop.path / ".metadata_rsync_exitcode").symlink_to(outside)  # a link never counts
    assert readiness(drop.path, (".metadata_rsync_exitcode",), None) is Readiness.WAITING
    (drop.path / ".metadata_rsync_exitcode").unlink()
    os.mkfifo(drop.path / ".metadata_rsync_exitcode")  # nor a FIFO (never opened: no hang)
    assert readiness(drop.path, (".metadata_rsync_exitcode",), None) is Readiness.WAITING
    (drop.path / ".metadata_rsync_exitcode").unlink()
    (drop.path / ".metadata_rsync_exitcode").write_text("0" + " " * 100_000)  # oversized: not known good
    assert readiness(drop.path, (".metadata_rsync_exitcode",), None) is Readiness.TRANSFER_FAILED


def test_only_configured_sentinels_count(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.mark_ready()
    assert readiness(drop.path, ("done.txt",), None) is Readiness.WAITING
    (drop.path / "done.txt").touch()
    assert readiness(drop.path, ("done.txt",), None) is Readiness.READY


def test_quiet_period_looks_at_nested_files(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    past = time.time() - 1000
    os.utime(drop.config_path, (past, past))
    newest = drop.add_file(fastq_relpath(), mtime=past + 500)
    assert readiness(drop.path, READY, 400, now=past + 800) is Readiness.WAITING
    assert readiness(drop.path, READY, 400, now=past + 900) is Readiness.READY
    os.utime(newest, (past + 850, past + 850))  # deep file touched: folder mtimes do not change
    assert readiness(drop.path, READY, 400, now=past + 900) is Readiness.WAITING
    assert readiness(drop.path, READY, None, now=past + 10_000) is Readiness.WAITING


def test_candidates_exclude_sidecars_and_sync_yml(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    a = fastq_relpath(read=1)
    drop.add_file(a, md5="correct")
    drop.add_file(a + ".blake3", b"x")
    drop.add_file("sub/sync.yml", b"a nested sync.yml is just a file")
    drop.add_file("notes.txt", b"n")
    drop.add_file("sub/x.dropsync-tmp.fastq.gz", b"our own temporary")
    relpaths = [c.relpath for c in candidate_files(drop.path, "**/*")]
    assert relpaths == ["notes.txt", a, "sub/sync.yml"]
    assert [c.relpath for c in candidate_files(drop.path, "**/*.fastq.gz")] == [a]


def test_candidate_fields(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    path = drop.add_file("a/b.fastq.gz", b"12345", mtime=1_700_000_000)
    (cand,) = candidate_files(drop.path, "**/*.fastq.gz")
    assert (cand.relpath, cand.path, cand.size, cand.mtime, cand.escapes) == (
        "a/b.fastq.gz", path, 5, 1_700_000_000, False)


def test_every_symlink_in_the_drop_is_held_not_followed(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    secret = tmp_path / "secret.fastq.gz"
    secret.write_bytes(b"outside" * 100)
    (drop.path / "escape.fastq.gz").symlink_to(secret)
    (drop.path / "dangling.fastq.gz").symlink_to(tmp_path / "nothing")
    inside = drop.add_file("real.fastq.gz", b"inside")
    (drop.path / "alias.fastq.gz").symlink_to(inside)
    got = {c.relpath: c for c in candidate_files(drop.path, "*.fastq.gz")}
    # A link inside the drop is held too: what it names may change before it is read.
    assert {k: c.held for k, c in got.items()} == {
        "alias.fastq.gz": Reason.UNSAFE_PATH, "dangling.fastq.gz": Reason.UNSAFE_PATH,
        "escape.fastq.gz": Reason.UNSAFE_PATH, "real.fastq.gz": None}
    assert got["escape.fastq.gz"].size != 700  # the link itself was stat-ed, not its target


def test_symlinked_folders_are_never_descended(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "x.fastq.gz").write_bytes(b"x")
    (drop.path / "linked").symlink_to(outside)
    relpaths = [c.relpath for c in candidate_files(drop.path, "**/*.fastq.gz")]
    assert relpaths == []


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("**/*.fastq.gz", ["a.fastq.gz", "a/b/c.fastq.gz"], ["a.fastq", "a/b.fastq.gz.md5x"]),
        ("*.fastq.gz", ["a.fastq.gz"], ["a/b.fastq.gz"]),
        ("scRNA/**", ["scRNA/a", "scRNA/a/b"], ["x/scRNA/a"]),
        ("run?/[!x]*.txt", ["run1/a.txt"], ["run12/a.txt", "run1/x.txt"]),
        ("[ab].txt", ["a.txt", "b.txt"], ["c.txt"]),
        ("a+b(1).txt", ["a+b(1).txt"], ["aab1.txt"]),
        ("lone[.txt", ["lone[.txt"], ["lone.txt"]),
    ],
)
def test_glob_semantics(pattern: str, yes: list[str], no: list[str]) -> None:
    regex = glob_regex(pattern)
    assert [p for p in yes if regex.fullmatch(p)] == yes
    assert [p for p in no if regex.fullmatch(p)] == []


def test_fingerprint_sees_nested_changes(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    before = fingerprint(candidate_files(drop.path, "**/*.fastq.gz"))
    drop.add_file(fastq_relpath(read=1) + ".blake3", b"sidecars do not count")
    assert fingerprint(candidate_files(drop.path, "**/*.fastq.gz")) == before
    drop.add_file(fastq_relpath(read=2))
    assert fingerprint(candidate_files(drop.path, "**/*.fastq.gz")) != before


def test_settings_roots_feed_list_drops(tmp_path: Path) -> None:
    drop = make_drop(tmp_path, "run1")
    settings = settings_from_env(drop.env())
    assert [d.key for d in list_drops(settings.drop_roots)] == ["seq-run1"]


def _deep_folder(top: Path, depth_bytes: int) -> str:
    """Folders below `top` whose path exceeds `depth_bytes`, made through descriptors (a path
    over PATH_MAX cannot be made by name); returns the deepest path."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    path = str(top)
    while len(path) <= depth_bytes:
        name = "d" * 200
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, path = child, f"{path}/{name}"
    os.close(os.open("x.fastq.gz", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    return path


def test_odd_entries_are_held_with_their_reason(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file("ok.fastq.gz", b"ok")
    os.mkfifo(drop.path / "pipe.fastq.gz")
    bad = os.fsencode(str(drop.path)) + b"/bad\xff.fastq.gz"
    with open(bad, "wb") as f:
        f.write(b"not utf-8 name")
    drop.add_file("l" * 246 + ".fastq.gz", b"no room for .blake3")  # 255 bytes
    got = {c.relpath: c.held for c in candidate_files(drop.path, "*.fastq.gz")}
    assert got == {
        "ok.fastq.gz": None,
        "pipe.fastq.gz": Reason.UNSAFE_PATH,
        "bad\\xff.fastq.gz": Reason.BAD_NAME,
        "l" * 246 + ".fastq.gz": Reason.BAD_NAME,
    }


def test_path_over_path_max_is_held_not_a_crash(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file("ok.fastq.gz", b"ok")
    _deep_folder(drop.path, 4200)
    got = {c.relpath: c.held for c in candidate_files(drop.path, "**/*.fastq.gz")}
    assert got.pop("ok.fastq.gz") is None
    assert set(got.values()) == {Reason.BAD_NAME}


def test_candidates_carry_their_identity(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    path = drop.add_file("a.fastq.gz", b"12345")
    st = path.stat()
    (cand,) = candidate_files(drop.path, "*.fastq.gz")
    assert (cand.device, cand.inode, cand.size, cand.mtime, cand.ctime) == (
        st.st_dev, st.st_ino, 5, st.st_mtime, st.st_ctime)


def test_a_folder_past_path_max_holds_the_drop_back_as_bad_name(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
                                  drop_filename_filter="**/*.fastq.gz", drop_filename_regex=r"ok\.fastq\.gz",
                                  repository_filename="x/ok_r<run>", filename_sequence="run"))
    drop.add_file("ok.fastq.gz", b"ok")
    _deep_folder(drop.path, 4200)
    reasons = {e.reason for e in drop.plan().entries if e.relpath != "ok.fastq.gz"}
    assert reasons == {Reason.BAD_NAME}  # never skipped_non_match: it may hold matching files
