"""`dropsync plan` as a subprocess: the plan document, exit codes 0/1/2, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dropsync_dagster.core.model import Plan
from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config

SEED_FILE = "scRNA/btki/2026-11-20/SEQ_ABCDE/ABC_DEFGHI_S1_L001_R1_001.fastq.gz"
SEED_TARGET = "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz"


def plain_config(drop: Drop, **overrides: object) -> dict:
    """The seed example without LabKey: `dropsync plan` asks LabKey when a drop names one."""
    return seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None, **overrides)


def plain_drop(tmp_path: Path) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(plain_config(drop))
    return drop


def dropsync(drop: Drop, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run the CLI with only this drop's DROPSYNC_* settings (plus overrides)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "dropsync_dagster.cli", *args],
        env={**base, **drop.env(**env)}, capture_output=True, text=True, timeout=120,
    )


def assert_config_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, exactly one line on stderr naming the problem, no traceback, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dropsync: configuration error: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    for needle in needles:
        assert needle in lines[0]


def test_seed_example_plan_and_json(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(SEED_FILE)
    shown = dropsync(drop, "plan", str(drop.path))
    assert shown.returncode == 0, shown.stderr
    assert "would_copy" in shown.stdout and "would_move" in shown.stdout and "would_skip" not in shown.stdout
    as_json = dropsync(drop, "plan", drop.key, "--json")  # a partition key works too
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    (entry,) = doc["entries"]
    assert entry["variables"] | {"today": "", "run": ""} == {
        "phase": "btki", "seq": "SEQ_ABCDE", "prefix": "ABC_DEFGHI_S1_L001", "lib": "ABC_DEFGHI",
        "suffix": "R1_001", "today": "", "run": ""}
    assert entry["variables"]["run"] == "1"
    assert entry["target"] == str(drop.repository / SEED_TARGET)
    assert entry["processed"] == str(drop.processed / SEED_FILE)
    assert entry["reason"] is None
    plan = Plan.model_validate_json(as_json.stdout)
    assert plan.drop == drop.key and plan.entries[0].target_relpath == SEED_TARGET


def test_already_synced_and_non_matching_files_exit_0(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.write_config(plain_config(drop, drop_filename_filter="**/*"))
    drop.add_file(SEED_FILE)
    drop.add_file("README.txt")
    (drop.repository / SEED_TARGET).parent.mkdir(parents=True)
    (drop.repository / SEED_TARGET).write_bytes(fastq_content(SEED_FILE))
    result = dropsync(drop, "plan", str(drop.path), "--json")
    assert result.returncode == 0, result.stderr
    reasons = {e["relpath"]: e["reason"] for e in json.loads(result.stdout)["entries"]}
    assert reasons == {SEED_FILE: "already_synced", "README.txt": "skipped_non_match"}


def test_a_file_stopped_at_a_gate_exits_1(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.write_config(plain_config(drop, filename_sequence=None,
                                  repository_filename="scRNA/raw/<phase>/<lib>/<lib>_<seq>__<suffix>.fastq.gz"))
    drop.add_file(SEED_FILE)
    drop.add_file(fastq_relpath(read=2))
    taken = drop.repository / "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE__R1_001.fastq.gz"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"different content")
    result = dropsync(drop, "plan", str(drop.path))
    assert result.returncode == 1, result.stderr
    assert "would_skip:target_conflict" in result.stdout and "would_copy" in result.stdout
    assert taken.read_bytes() == b"different content"


def test_symlink_out_of_the_drop_exits_1(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    secret = tmp_path / "secret.fastq.gz"
    secret.write_bytes(b"not yours")
    link = drop.path / SEED_FILE
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    result = dropsync(drop, "plan", str(drop.path), "--json")
    assert result.returncode == 1, result.stderr
    (entry,) = json.loads(result.stdout)["entries"]
    assert (entry["reason"], entry["target"]) == ("unsafe_path", None)


def test_path_escaping_the_repository_exits_1(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.write_config(plain_config(drop, lookups={"phase": {"btki": "../../escaped"}}))
    drop.add_file(SEED_FILE)
    result = dropsync(drop, "plan", str(drop.path), "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["entries"][0]["reason"] == "unsafe_path"


def test_without_allowed_roots_planning_works(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(SEED_FILE)
    result = dropsync(drop, "plan", str(drop.path), "--json", DROPSYNC_ALLOWED_ROOTS=None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries"][0]["target"] == str(drop.repository / SEED_TARGET)


def _yaml_syntax(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    text = drop.config_path.read_text().replace("drop_filename_filter: ", "drop_filename_filter: [", 1)
    drop.write_config(text)
    return {}, (f"{drop.config_path}:", "YAML syntax error")


def _unknown_key(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    drop.write_config(drop.config_path.read_text().replace("repository_folder:", "reposity_folder:"))
    return {}, (f"{drop.config_path}:", "reposity_folder: unknown key (did you mean 'repository_folder'?)")


def _unknown_nested_key(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    with_labkey = seed_config(drop.repository, drop.processed)
    drop.write_config(drop.write_config(with_labkey).read_text().replace("  host:", "  hots:"))
    return {}, ("labkey.hots: unknown key (did you mean 'host'?)",)


def _bad_regex(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    drop.write_config(plain_config(drop, drop_filename_regex="(?P<phase>[a-z+"))
    return {}, ("drop_filename_regex: invalid regex",)


def _unknown_placeholder(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    drop.write_config(plain_config(drop, repository_filename="<phase>/<libary>_r<run>"))
    return {}, ("repository_filename: placeholder <libary> has no provider",)


def _repository_outside_allowed_roots(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    drop.write_config(plain_config(drop) | {"repository_folder": str(drop.root.parent / "elsewhere")})
    return {}, ("repository_folder:", "elsewhere is outside DROPSYNC_ALLOWED_ROOTS")


def _processed_outside_allowed_roots(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    return {"DROPSYNC_ALLOWED_ROOTS": str(drop.repository)}, ("processed_folder:", "is outside DROPSYNC_ALLOWED_ROOTS")


def _duplicate_root_names(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    roots = os.pathsep.join([f"x={drop.root}", f"x={drop.root.parent}"])
    return {"DROPSYNC_DROP_ROOTS": roots}, ("DROPSYNC_DROP_ROOTS: two roots are named 'x'",)


def _bad_quiet_seconds(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    return {"DROPSYNC_QUIET_SECONDS": "soon"}, ("DROPSYNC_QUIET_SECONDS",)


def _missing_sync_yml(drop: Drop) -> tuple[dict[str, str], tuple[str, ...]]:
    drop.config_path.unlink()
    return {}, (f"{drop.config_path}: cannot read",)


@pytest.mark.parametrize(
    "breaks",
    [_yaml_syntax, _unknown_key, _unknown_nested_key, _bad_regex, _unknown_placeholder,
     _repository_outside_allowed_roots, _processed_outside_allowed_roots, _duplicate_root_names,
     _bad_quiet_seconds, _missing_sync_yml],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, breaks: Callable[[Drop], tuple[dict[str, str], tuple[str, ...]]]
) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(SEED_FILE)
    env, needles = breaks(drop)
    assert_config_error(dropsync(drop, "plan", str(drop.path), "--json", **env), *needles)


def test_unknown_drop_is_exit_2(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    assert_config_error(dropsync(drop, "plan", "seq-nope"), "seq-nope: neither a drop folder nor the key")
