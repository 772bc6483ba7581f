"""Deployment settings: drop roots, allowed roots (realpath), readiness files, quiet period."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.settings import DEFAULT_READY_FILES, DropRoot
from dropsync_dagster.deployment import deployment_from_env, settings_from_env
from dropsync_dagster.deployment.values import NUMBERS, env_number


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = settings_from_env({})
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
    roots = settings_from_env({"DROPSYNC_DROP_ROOTS": value}).drop_roots
    assert roots == (
        DropRoot("seq", tmp_path / "miseq"),
        DropRoot("nova", tmp_path / "nova"),  # realpath first, so the basename is the real folder's
        DropRoot("ext", tmp_path / "nova"),
    )


def test_empty_name_defaults_to_basename(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    roots = settings_from_env({"DROPSYNC_DROP_ROOTS": f"={tmp_path}/a"}).drop_roots
    assert roots == (DropRoot("a", tmp_path / "a"),)


def test_a_bare_path_may_contain_equals(tmp_path: Path) -> None:
    (tmp_path / "run=7").mkdir()
    roots = settings_from_env({"DROPSYNC_DROP_ROOTS": f"{tmp_path}/run=7"}).drop_roots
    assert roots == (DropRoot("run=7", tmp_path / "run=7"),)


def test_duplicate_root_names_are_an_error(tmp_path: Path) -> None:
    for folder in ("x/drops", "y/drops", "x", "y"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    value = os.pathsep.join([f"{tmp_path}/x/drops", f"{tmp_path}/y/drops"])
    with pytest.raises(ConfigError, match="DROPSYNC_DROP_ROOTS: two roots are named 'drops'"):
        settings_from_env({"DROPSYNC_DROP_ROOTS": value})
    with pytest.raises(ConfigError, match="named 'a'"):
        settings_from_env({"DROPSYNC_DROP_ROOTS": os.pathsep.join([f"a={tmp_path}/x", f"a={tmp_path}/y"])})


def test_allowed_roots_refuse_outside_folders(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "proc").mkdir()
    settings = settings_from_env({"DROPSYNC_ALLOWED_ROOTS": f"{tmp_path}/repo{os.pathsep}{tmp_path}/proc"})
    assert settings.check_allowed(tmp_path / "repo" / "a" / ".." / "b", "repository_folder") == tmp_path / "repo" / "b"
    assert settings.check_allowed(tmp_path / "proc", "processed_folder") == tmp_path / "proc"
    for outside in (tmp_path / "repository", tmp_path / "repo" / ".." / "other", Path("/etc")):
        with pytest.raises(ConfigError, match="repository_folder: .* is outside DROPSYNC_ALLOWED_ROOTS"):
            settings.check_allowed(outside, "repository_folder")


def test_symlinks_cannot_smuggle_a_folder_out(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo" / "sneaky").symlink_to(tmp_path / "elsewhere")
    settings = settings_from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path / "repo")})
    with pytest.raises(ConfigError, match=f"{tmp_path}/elsewhere/data is outside"):
        settings.check_allowed(tmp_path / "repo" / "sneaky" / "data", "repository_folder")


def test_allowed_root_given_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    settings = settings_from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path / "alias")})
    assert settings.allowed_roots == (tmp_path / "real",)
    assert settings.check_allowed(tmp_path / "real" / "x", "processed_folder") == tmp_path / "real" / "x"


def test_without_allowed_roots_planning_works_and_writing_refuses(tmp_path: Path) -> None:
    settings = settings_from_env({})
    assert settings.check_allowed("/anywhere/at/all", "repository_folder") == Path("/anywhere/at/all")
    with pytest.raises(ConfigError, match="repository_folder: refusing to write: DROPSYNC_ALLOWED_ROOTS is not set"):
        settings.check_writable(tmp_path, "repository_folder")
    allowed = settings_from_env({"DROPSYNC_ALLOWED_ROOTS": str(tmp_path)})
    assert allowed.check_writable(tmp_path / "r", "repository_folder") == tmp_path / "r"
    with pytest.raises(ConfigError, match="outside DROPSYNC_ALLOWED_ROOTS"):
        allowed.check_writable("/elsewhere", "repository_folder")


def test_ready_files_and_quiet_seconds() -> None:
    settings = settings_from_env({"DROPSYNC_READY_FILES": " done.txt , ,.ok", "DROPSYNC_QUIET_SECONDS": "90"})
    assert settings.ready_files == ("done.txt", ".ok")
    assert settings.quiet_seconds == 90.0


def test_bad_quiet_seconds_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DROPSYNC_QUIET_SECONDS: not a number: '5 min'"):
        settings_from_env({"DROPSYNC_QUIET_SECONDS": "5 min"})


def test_drop_dir_is_under_state_dir(tmp_path: Path) -> None:
    settings = settings_from_env({"DROPSYNC_STATE_DIR": str(tmp_path / "state")})
    assert settings.drop_dir("seq-run1") == tmp_path / "state" / "drops" / "seq-run1"


@pytest.mark.parametrize(("value", "mode"), [("", None), ("0640", 0o640), ("600", 0o600), ("0o644", 0o644)])
def test_file_mode_is_octal_permission_bits(value: str, mode: int | None) -> None:
    assert settings_from_env({"DROPSYNC_FILE_MODE": value}).file_mode == mode


@pytest.mark.parametrize("value", ["rw-r-----", "0999", "4755", "01777", "-1"])
def test_file_mode_refuses_anything_but_permission_bits(value: str) -> None:
    with pytest.raises(ConfigError, match="^DROPSYNC_FILE_MODE: "):
        settings_from_env({"DROPSYNC_FILE_MODE": value})


# --- validated at start-up (issue 10 item 10): one line naming the variable ---

ROOT_VARIABLES = ["DROPSYNC_ALLOWED_ROOTS", "DROPSYNC_DROP_ROOTS", "DROPSYNC_METADATA_ROOTS"]


@pytest.mark.parametrize("name", ROOT_VARIABLES)
def test_the_file_system_root_is_never_a_root(tmp_path: Path, name: str) -> None:
    (tmp_path / "ok").mkdir()
    for value in ("/", f"{tmp_path}/ok{os.pathsep}/", "/tmp/../"):
        with pytest.raises(ConfigError, match=f"^{name}: .* is the file system root"):
            settings_from_env({name: value})


@pytest.mark.parametrize("name", ROOT_VARIABLES)
def test_relative_roots_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir()
    for value in ("repo", "./repo", "x=repo"):
        if "=" in value and name != "DROPSYNC_DROP_ROOTS":
            continue
        with pytest.raises(ConfigError, match=f"^{name}: '.*repo' is not an absolute path$"):
            settings_from_env({name: value})


@pytest.mark.parametrize("name", ROOT_VARIABLES)
def test_roots_must_be_existing_folders(tmp_path: Path, name: str) -> None:
    (tmp_path / "file").write_text("")
    for value in (tmp_path / "missing", tmp_path / "file"):
        with pytest.raises(ConfigError, match=f"^{name}: {value} is not an existing folder$"):
            settings_from_env({name: str(value)})


def test_metadata_roots(tmp_path: Path) -> None:
    for folder in ("meta", "lims", "repo"):
        (tmp_path / folder).mkdir()
    settings = settings_from_env({"DROPSYNC_METADATA_ROOTS": f"{tmp_path}/meta{os.pathsep}{tmp_path}/lims/",
                                  "DROPSYNC_ALLOWED_ROOTS": f"{tmp_path}/repo"})
    assert settings.metadata_roots == (tmp_path / "meta", tmp_path / "lims")
    assert settings.metadata_readable() == (tmp_path / "repo", tmp_path / "meta", tmp_path / "lims")
    assert settings_from_env({}).metadata_roots == ()


@pytest.mark.parametrize("name", list(NUMBERS))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e400", "ten"])
def test_numbers_must_be_finite_and_in_range(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        deployment_from_env({name: value})
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    assert repr(value) in message


@pytest.mark.parametrize("name", [n for n, r in NUMBERS.items() if r.integer])
def test_whole_number_settings_refuse_fractions(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: not a whole number: '2.5'$"):
        deployment_from_env({name: "2.5"})


@pytest.mark.parametrize("name", ["DROPSYNC_LEASE_SECONDS", "DROPSYNC_LABKEY_TIMEOUT", "DROPSYNC_MAX_FAILURES",
                                  "DROPSYNC_LABKEY_ATTEMPTS", "DROPSYNC_SENSOR_INTERVAL"])
def test_zero_is_refused_where_it_makes_no_sense(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: '0' is out of range"):
        deployment_from_env({name: "0"})


def test_numbers_in_range_are_read() -> None:
    env = {"DROPSYNC_QUIET_SECONDS": "0", "DROPSYNC_LEASE_SECONDS": "0.5", "DROPSYNC_MAX_FAILURES": "3",
           "DROPSYNC_LABKEY_ATTEMPTS": "1", "DROPSYNC_LABKEY_RETRY_DELAY": "0", "DROPSYNC_LABKEY_TIMEOUT": "2.5",
           "DROPSYNC_SENSOR_INTERVAL": "1"}
    assert settings_from_env(env).quiet_seconds == 0.0
    assert [env_number(env, n) for n in NUMBERS] == [0.0, 0.5, 3, 1, 0.0, 2.5, 1]
    assert env_number({}, "DROPSYNC_SENSOR_INTERVAL", 30) == 30


def test_quarantine_dir_is_off_when_empty_and_must_lie_in_the_allowed_roots(tmp_path: Path) -> None:
    for name in ("allowed/quarantine", "drops/run_a", "elsewhere"):
        (tmp_path / name).mkdir(parents=True)
    env = {"DROPSYNC_ALLOWED_ROOTS": str(tmp_path / "allowed"), "DROPSYNC_DROP_ROOTS": f"seq={tmp_path / 'drops'}"}
    assert settings_from_env(env).quarantine_dir is None
    assert settings_from_env({**env, "DROPSYNC_QUARANTINE_DIR": " "}).quarantine_dir is None
    inside = settings_from_env({**env, "DROPSYNC_QUARANTINE_DIR": str(tmp_path / "allowed/quarantine")})
    assert inside.quarantine_dir == tmp_path / "allowed/quarantine"
    with pytest.raises(ConfigError, match=r"^DROPSYNC_QUARANTINE_DIR: .*/elsewhere is outside DROPSYNC_ALLOWED_ROOTS"):
        settings_from_env({**env, "DROPSYNC_QUARANTINE_DIR": str(tmp_path / "elsewhere")})
    with pytest.raises(ConfigError, match=r"^DROPSYNC_QUARANTINE_DIR: .* and drop root .*/drops lie in one another"):
        settings_from_env({**env, "DROPSYNC_ALLOWED_ROOTS": str(tmp_path), "DROPSYNC_QUARANTINE_DIR": str(tmp_path / "drops/run_a")})
    with pytest.raises(ConfigError, match=r"^DROPSYNC_QUARANTINE_DIR: .* is not an existing folder"):
        settings_from_env({**env, "DROPSYNC_QUARANTINE_DIR": str(tmp_path / "allowed/missing")})
