"""Deployment settings: drop roots, allowed roots (realpath), readiness files, quiet period."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.settings import DEFAULT_READY_FILES, DropRoot, Settings


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.state_dir == tmp_path / ".dropsync"
    assert settings.state_dir.is_absolute()
    assert settings.allowed_roots == () and settings.drop_roots == ()
    assert settings.ready_files == DEFAULT_READY_FILES == (".ready", ".metadata_rsync_exitcode")
    assert settings.quiet_seconds is None


def test_drop_roots_names_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "miseq").mkdir()
    (tmp_path / "nova").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "nova")
    value = os.pathsep.join([f"seq={tmp_path}/miseq", f"{tmp_path}/link", f" ext = {tmp_path}/nova/"])
    roots = Settings.from_env({"DROPSYNC_DROP_ROOTS": value}).drop_roots
    assert roots == (
        DropRoot("seq", tmp_path / "miseq"),
        DropRoot("nova", tmp_path / "nova"),  # realpath first, so the basename is the real folder's
        DropRoot("ext", tmp_path / "nova"),
    )


def test_empty_name_defaults_to_basename(tmp_path: Path) -> None:
    roots = Settings.from_env({"DROPSYNC_DROP_ROOTS": f"={tmp_path}/a"}).drop_roots
    assert roots == (DropRoot("a", tmp_path / "a"),)


def test_a_bare_path_may_contain_equals(tmp_path: Path) -> None:
    roots = Settings.from_env({"DROPSYNC_DROP_ROOTS": f"{tmp_path}/run=7"}).drop_roots
    assert roots == (DropRoot("run=7", tmp_path / "run=7"),)


def test_duplicate_root_names_are_an_error(tmp_path: Path) -> None:
    value = os.pathsep.join([f"{tmp_path}/x/drops", f"{tmp_path}/y/drops"])
    with pytest.raises(ConfigError, match="DROPSYNC_DROP_ROOTS: two roots are named 'drops'"):
        Settings.from_env({"DROPSYNC_DROP_ROOTS": value})
    with pytest.raises(ConfigError, match="named 'a'"):
        Settings.from_env({"DROPSYNC_DROP_ROOTS": os.pathsep.join([f"a={tmp_path}/x", f"a={tmp_path}/y"])})


def test_allowed_roots_refuse_outside_folders(tmp_path: Path) -> None:
    settings = Settings.from_env({"DROPSYNC_ALLOWED_ROOTS": f"{tmp_path}/repo{os.pathsep}{tmp_path}/proc"})
    assert settings.check_allowed(tmp_path / "repo" / "a" / ".." / "b", "repository_folder") == tmp_path / "repo" / "b"
    assert settings.check_allowed(tmp_path / "proc", "processed_folder") == tmp_path / "proc"
    for outside in (tmp_path / "repository", tmp_path / "repo" / ".." / "other", Path("/etc")):
        with pytest.raises(ConfigError, match="repository_folder: .* is outside DROPSYNC_ALLOWED_ROOTS"):
            settings.check_allowed(outside, "repository_folder")


def test_symlinks_cannot_smuggle_a_folder_out(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo" / "sneaky").symlink_to(tmp_path / "elsewhere")
    settings = Settings.from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path / "repo")})
    with pytest.raises(ConfigError, match=f"{tmp_path}/elsewhere/data is outside"):
        settings.check_allowed(tmp_path / "repo" / "sneaky" / "data", "repository_folder")


def test_allowed_root_given_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    settings = Settings.from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path / "alias")})
    assert settings.allowed_roots == (tmp_path / "real",)
    assert settings.check_allowed(tmp_path / "real" / "x", "processed_folder") == tmp_path / "real" / "x"


def test_without_allowed_roots_planning_works_and_writing_refuses(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.check_allowed("/anywhere/at/all", "repository_folder") == Path("/anywhere/at/all")
    with pytest.raises(ConfigError, match="repository_folder: refusing to write: DROPSYNC_ALLOWED_ROOTS is not set"):
        settings.check_writable(tmp_path, "repository_folder")
    allowed = Settings.from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path)})
    assert allowed.check_writable(tmp_path / "r", "repository_folder") == tmp_path / "r"
    with pytest.raises(ConfigError, match="outside DROPSYNC_ALLOWED_ROOTS"):
        allowed.check_writable("/elsewhere", "repository_folder")


def test_ready_files_and_quiet_seconds() -> None:
    settings = Settings.from_env({"DROPSYNC_READY_FILES": " done.txt , ,.ok", "DROPSYNC_QUIET_SECONDS": "90"})
    assert settings.ready_files == ("done.txt", ".ok")
    assert settings.quiet_seconds == 90.0


def test_bad_quiet_seconds_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DROPSYNC_QUIET_SECONDS: not a number: '5 min'"):
        Settings.from_env({"DROPSYNC_QUIET_SECONDS": "5 min"})


def test_drop_dir_is_under_state_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"DROPSYNC_STATE_DIR": str(tmp_path / "state")})
    assert settings.drop_dir("seq-run1") == tmp_path / "state" / "drops" / "seq-run1"


@pytest.mark.parametrize(("value", "mode"), [("", None), ("0640", 0o640), ("600", 0o600), ("0o644", 0o644)])
def test_file_mode_is_octal_permission_bits(value: str, mode: int | None) -> None:
    assert Settings.from_env({"DROPSYNC_FILE_MODE": value}).file_mode == mode


@pytest.mark.parametrize("value", ["rw-r-----", "0999", "4755", "01777", "-1"])
def test_file_mode_refuses_anything_but_permission_bits(value: str) -> None:
    with pytest.raises(ConfigError, match="^DROPSYNC_FILE_MODE: "):
        Settings.from_env({"DROPSYNC_FILE_MODE": value})
