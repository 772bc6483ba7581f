"""Folders opened and made under a root, one component at a time, never through a link out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropsync_dagster.core.fs.confined import NotAFolderError, open_under
from dropsync_dagster.core.errors import UnsafePathError


def _ino(fd: int) -> int:
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def test_missing_folders_are_made_below_the_root(tmp_path: Path) -> None:
    fd = open_under(tmp_path, tmp_path / "a" / "b" / "c", create=True)
    assert _ino(fd) == (tmp_path / "a" / "b" / "c").stat().st_ino


def test_a_link_out_of_the_root_is_refused_and_nothing_is_made_there(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        open_under(root, root / "a" / "b", create=True)
    assert list(outside.iterdir()) == []


def test_a_link_that_stays_inside_the_root_is_walked_again_without_following(tmp_path: Path) -> None:
    (tmp_path / "real" / "x").mkdir(parents=True)
    (tmp_path / "alias").symlink_to("real")
    assert _ino(open_under(tmp_path, tmp_path / "alias" / "x")) == (tmp_path / "real" / "x").stat().st_ino


def test_a_file_where_a_folder_must_be_and_a_path_leaving_the_root(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a file")
    with pytest.raises(NotAFolderError):
        open_under(tmp_path, tmp_path / "f" / "x", create=True)
    with pytest.raises(UnsafePathError, match="not inside"):
        open_under(tmp_path / "f", tmp_path)


def test_the_root_itself_may_not_be_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "root").symlink_to("real")
    with pytest.raises(UnsafePathError, match="symlink"):
        open_under(tmp_path / "root", tmp_path / "root" / "x", create=True)
