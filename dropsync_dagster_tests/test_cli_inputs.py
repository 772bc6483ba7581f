"""Hostile inputs through the real `dropsync` entry point (issue 10 items 3, 4, 5, 7, 10):
every refusal is exit 2 (configuration) or 3 (run failed) with exactly one stderr line and no
traceback, within a time bound — never a hang, never exit 1 for a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config

DROPSYNC = Path(sys.executable).with_name("dropsync")  # the console script pip installed
BOUND = 60  # seconds: each case finishes in a few; a regression fails here instead of hanging


def plain_drop(tmp_path: Path, **overrides: object) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None,
                                  field_parameters=None, **overrides))
    drop.add_file(fastq_relpath())
    drop.mark_ready()
    return drop


def dropsync(drop: Drop, *args: str, extra_env: dict[str, str] | None = None,
             **settings: str | None) -> subprocess.CompletedProcess:
    """Run the installed `dropsync` script with this drop's settings (a timeout is a failure)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
    env = {**base, **drop.env(**settings), "DAGSTER_HOME": str(drop.root.parent / "dagster_home"), **(extra_env or {})}
    return subprocess.run([str(DROPSYNC), *args], env=env, capture_output=True, text=True, timeout=BOUND)


def one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The contract for codes 2 and 3: that code, one stderr line, no traceback, no class path."""
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "dropsync_dagster." not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def plan(drop: Drop, **settings: str | None) -> subprocess.CompletedProcess:
    return dropsync(drop, "plan", str(drop.path), **settings)


# --- sync.yml ---

# "Billion laughs": 10^10 nodes once expanded, in ten short lines.
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))

def test_a_fifo_sync_yml(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.config_path.unlink()
    os.mkfifo(drop.config_path)
    one_line(plan(drop), 2, "sync.yml: is a FIFO")


@pytest.mark.parametrize(("tail", "needle"), [
    (BOMB, "YAML aliases expand to more than"),
    ("loop: &loop [*loop]\n", "recursive alias"),
    ("repository_folder: /elsewhere\n", "repository_folder: duplicate key (first on line"),
])
def test_hostile_yaml(tmp_path: Path, tail: str, needle: str) -> None:
    drop = plain_drop(tmp_path)
    drop.write_config(drop.config_path.read_text() + tail)
    one_line(plan(drop), 2, needle)


def test_a_50_mb_sync_yml_is_refused_by_its_size(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with drop.config_path.open("a") as handle:
        handle.write(("#" * 1023 + "\n") * 50 * 1024)
    one_line(plan(drop), 2, "more than the limit of 1048576 bytes")


def test_a_catastrophic_regex_is_a_configuration_error(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, drop_filename_filter="**/*", drop_filename_regex=r"(?P<phase>(a|aa)+)$",
                      repository_filename="<phase>_r<run>")
    drop.add_file("a" * 60 + "b")
    one_line(plan(drop), 2, "drop_filename_regex: matching took longer than")


def test_a_regex_group_named_run(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, drop_filename_regex=r"(?P<run>[^/]+)/(?P<phase>[^/]+)/.*",
                      repository_filename="<phase>_r<run>")
    one_line(plan(drop), 2, "drop_filename_regex: group name <run> is a built-in placeholder")


# --- layout ---

@pytest.mark.parametrize(("key", "value", "needle"), [
    ("processed_folder", ".", "processed_folder {drop} is the same folder as the drop folder {drop}"),
    ("processed_folder", "../other_drop", "processed_folder {root}/other_drop lies inside the drop root {root}"),
    ("repository_folder", "repo", "repository_folder {drop}/repo lies inside the drop folder {drop}"),
])
def test_layouts_that_lost_or_injected_files_are_refused(tmp_path: Path, key: str, value: str, needle: str) -> None:
    drop = plain_drop(tmp_path, **{key: value})
    (drop.root / "other_drop").mkdir()
    line = one_line(plan(drop, DROPSYNC_ALLOWED_ROOTS=str(tmp_path)), 2)
    assert line == "dropsync: configuration error: " + needle.format(drop=drop.path, root=drop.root)


def test_processed_folder_dot_never_deletes_originals(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path, processed_folder=".")
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", DROPSYNC_ALLOWED_ROOTS=str(tmp_path))
    one_line(done, 2, "is the same folder as the drop folder")
    assert (drop.path / fastq_relpath()).is_file()
    assert not any(drop.repository.iterdir())


# --- settings ---

@pytest.mark.parametrize(("name", "value", "needle"), [
    ("DROPSYNC_ALLOWED_ROOTS", "/", "DROPSYNC_ALLOWED_ROOTS: '/' is the file system root"),
    ("DROPSYNC_ALLOWED_ROOTS", "repository", "DROPSYNC_ALLOWED_ROOTS: 'repository' is not an absolute path"),
    ("DROPSYNC_METADATA_ROOTS", "/nonexistent/meta", "DROPSYNC_METADATA_ROOTS: /nonexistent/meta is not an existing"),
    ("DROPSYNC_QUIET_SECONDS", "nan", "DROPSYNC_QUIET_SECONDS: 'nan' is out of range"),
    ("DROPSYNC_LEASE_SECONDS", "-5", "DROPSYNC_LEASE_SECONDS: '-5' is out of range"),
    ("DROPSYNC_MAX_FAILURES", "inf", "DROPSYNC_MAX_FAILURES: not a whole number: 'inf'"),
])
def test_bad_settings_are_refused_at_start_up(tmp_path: Path, name: str, value: str, needle: str) -> None:
    one_line(plan(plain_drop(tmp_path), **{name: value}), 2, needle)


# --- metadata sources ---

def metadata_drop(tmp_path: Path, path: str | Path, kind: str = "csv") -> Drop:
    return plain_drop(
        tmp_path, metadata_sources=[{"name": "m", "type": kind, "path": str(path)}],
        metadata_match={"key_template": "<lib>", "search": [{"source": "m", "field": "Lib"}]},
        repository_filename="<lib>/<m.Name>_r<run>.fastq.gz")


def test_a_fifo_metadata_source(tmp_path: Path) -> None:
    drop = metadata_drop(tmp_path, "m.csv")
    os.mkfifo(drop.path / "m.csv")
    one_line(plan(drop), 2, "metadata source 'm'", "is a FIFO")


def test_a_root_only_file_outside_the_roots_never_leaks(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = tmp_path_factory.mktemp("etc") / "shadow.csv"
    secret.write_text("Lib,Name\nABC_DEFGHI,TOP-SECRET\n")
    secret.chmod(0o600)
    drop = metadata_drop(tmp_path, secret)
    done = dropsync(drop, "plan", str(drop.path), "--json")
    one_line(done, 2, f"{secret} is outside the drop folder, DROPSYNC_ALLOWED_ROOTS and DROPSYNC_METADATA_ROOTS")
    assert "TOP-SECRET" not in done.stdout + done.stderr
    allowed = dropsync(drop, "plan", str(drop.path), "--json", DROPSYNC_METADATA_ROOTS=str(secret.parent))
    assert allowed.returncode == 0, allowed.stderr  # a deployment may name such a folder on purpose


def test_a_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    drop = metadata_drop(tmp_path, "m.xlsx", kind="excel")
    with zipfile.ZipFile(drop.path / "m.xlsx", "w") as archive:
        archive.writestr("[Content_Types].xml", "<not-xml")
    one_line(plan(drop), 2, "is not a readable .xlsx workbook")


def test_a_csv_with_a_million_columns(tmp_path: Path) -> None:
    drop = metadata_drop(tmp_path, "m.csv")
    (drop.path / "m.csv").write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n")
    one_line(plan(drop), 2, "row 1 has 1000000 columns")


def test_a_nul_byte_in_a_metadata_value_holds_the_file(tmp_path: Path) -> None:
    drop = metadata_drop(tmp_path, "m.csv")
    (drop.path / "m.csv").write_bytes(b"Lib,Name\nABC_DEFGHI,x\x00y\n")
    done = plan(drop)
    assert done.returncode == 1, done.stderr  # held at a gate (unsafe_path), not a crash
    assert "unsafe_path" in done.stdout and done.stderr == ""


# --- output ---

@pytest.mark.parametrize("name", ["[bold]x[/]", "[link=mailto:a@evil.example]x[/link]", "e\x1b[2Jx\x1b]0;t\x07"])
def test_file_names_never_inject_markup_or_escapes(tmp_path: Path, name: str) -> None:
    drop = plain_drop(tmp_path, drop_filename_filter="**/*", drop_filename_regex=r"(?P<phase>.+)",
                      repository_filename="x/<phase>_r<run>")
    drop.add_file(name)
    done = plan(drop)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert name.replace("\x1b", "\\x1b").replace("\x07", "\\x07") in done.stdout


def test_an_unexpected_exception_is_one_line_exit_3(tmp_path: Path) -> None:
    """The last resort of main(): a crash anywhere is exit 3 with its message, never a traceback."""
    drop = plain_drop(tmp_path)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "from dropsync_dagster import deployment\n"
        "def crash(*args, **kwargs):\n"
        "    raise RuntimeError('boom\\n\\x1b[31msecond line')\n"
        "deployment.deployment_from_env = crash\n")
    path = os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")]))
    done = dropsync(drop, "plan", str(drop.path), extra_env={"PYTHONPATH": path})
    line = one_line(done, 3)
    assert line == "dropsync: failed: unexpected RuntimeError: boom\\x0a\\x1b[31msecond line"
