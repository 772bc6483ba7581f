"""The plan: variables, targets, `<run>`/`<hash>`/`<today>`, gates and reasons, frozen and JSON-safe."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.model import Plan, PlanEntry, Reason
from dropsync_dagster.core.plan.planner import MetadataResult
from dropsync_dagster.core.plan.report import copy_action, move_action, stopped
from dropsync_dagster_tests.support.drops import (
    SEED_MINIMAL,
    SEED_TEMPLATE,
    Drop,
    fastq_content,
    fastq_relpath,
    make_drop,
    seed_config,
)

SEED_FILE = "scRNA/btki/2026-11-20/SEQ_ABCDE/ABC_DEFGHI_S1_L001_R1_001.fastq.gz"
SEED_TARGET = "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz"
NOW = datetime(2026, 11, 21, 8, 30, tzinfo=timezone.utc)


def simple_config(drop: Drop, template: str, **overrides: object) -> dict:
    """Any file name captured whole as <name>; no LabKey."""
    return seed_config(
        drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
        drop_filename_filter="**/*", drop_filename_regex=r"(?:(?P<dir>.*)/)?(?P<name>[^/]+)$",
        repository_filename=template, filename_sequence=None, **overrides,
    )


def by_file(plan: Plan) -> dict[str, PlanEntry]:
    return {e.relpath: e for e in plan.entries}


def put(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_seed_readme_example(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    (entry,) = drop.plan(now=NOW).entries
    assert entry.relpath == SEED_FILE and entry.matched
    captured = {k: v for k, v in entry.variables.items() if k not in ("run", "today")}
    assert captured == {"phase": "btki", "seq": "SEQ_ABCDE", "lib": "ABC_DEFGHI", "prefix": "ABC_DEFGHI_S1_L001",
                        "suffix": "R1_001"}
    assert entry.variables["run"] == "1" and entry.variables["today"] == "2026-11-21"
    assert entry.target_relpath == SEED_TARGET
    assert entry.target == str(drop.repository / SEED_TARGET)
    assert entry.processed == str(drop.processed / SEED_FILE)
    assert entry.reason is None and entry.goes_ahead and copy_action(entry) == "would_copy"
    assert move_action(entry) == "would_move"


def test_seed_example_with_relative_folders(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config("../../repository", "../../processed"))  # relative to the drop folder
    drop.add_file(SEED_FILE)
    plan = drop.plan()
    assert plan.repository_folder == str(drop.repository)
    assert plan.entries[0].target == str(drop.repository / SEED_TARGET)


def test_seed_minimal_config_plans_unchanged(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(SEED_MINIMAL)  # absolute /cluster folders: planning needs no allowed roots
    drop.add_file(SEED_FILE)
    (entry,) = drop.plan(settings=drop.settings(DROPSYNC_ALLOWED_ROOTS=None)).entries
    assert entry.target == f"/cluster/work/nexusintercept/data-repository/{SEED_TARGET}"
    assert entry.processed == f"/cluster/work/nexusintercept/data-processed/{SEED_FILE}"


def test_seed_template_plans_with_its_folders_moved_out_of_the_drop(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.path / "data").mkdir()
    drop.write_config(SEED_TEMPLATE)  # its folders are relative to the drop: inside it (layout rules)
    drop.add_file(SEED_FILE)
    with pytest.raises(ConfigError, match="repository_folder .*/data/repository lies inside the drop folder"):
        drop.plan(settings=drop.settings(DROPSYNC_ALLOWED_ROOTS=str(drop.path / "data")))
    drop.write_config(SEED_TEMPLATE.replace("data/repository", "../../repository")
                      .replace("data/processed", "../../processed"))  # lookups phase btki -> BTKi
    (entry,) = drop.plan().entries
    assert entry.target == str(drop.repository / SEED_TARGET.replace("/btki/", "/BTKi/"))
    assert entry.variables["phase"] == "BTKi" and entry.variables["run"] == "1"


def test_run_is_smallest_free_in_plan_and_repository(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    stem = drop.repository / "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r{}__R1_001.fastq.gz"
    files = [fastq_relpath(sample=s) for s in (1, 2, 3)]  # S1..S3 share lib, seq and suffix
    for relpath in files:
        drop.add_file(relpath)
    # r1: other content of another size; r3: other content of the same size (compared byte by byte)
    put(Path(str(stem).format(1)), b"other")
    put(Path(str(stem).format(3)), fastq_content(files[2]).replace(b"ACGT", b"TTTT"))
    got = by_file(drop.plan())
    assert [got[f].variables["run"] for f in files] == ["2", "4", "5"]
    assert [got[f].target for f in files] == [str(stem).format(n) for n in (2, 4, 5)]
    assert all(got[f].reason is None for f in files)


def test_identical_content_at_a_run_slot_is_already_synced(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    first, second = fastq_relpath(sample=1), fastq_relpath(sample=2)
    drop.add_file(first)
    drop.add_file(second)
    stem = "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r{}__R1_001.fastq.gz"
    put(drop.repository / stem.format(1), b"something else")
    put(drop.repository / stem.format(2), fastq_content(second))
    got = by_file(drop.plan())
    assert (got[second].target_relpath, got[second].reason) == (stem.format(2), Reason.ALREADY_SYNCED)
    assert (got[first].target_relpath, got[first].reason) == (stem.format(3), None)
    assert got[second].goes_ahead and copy_action(got[second]) == "would_skip:already_synced"
    assert move_action(got[second]) == "would_move"
    assert stopped(drop.plan()) == []


def test_many_files_on_one_stem_get_consecutive_runs_and_a_rerun_finds_them(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    for i in range(300):
        drop.add_file(fastq_relpath(sample=i + 1))
    first = drop.plan()
    assert sorted(int(e.variables["run"]) for e in first.entries) == list(range(1, 301))
    for e in first.entries:  # as if a crash hit after the copies, before the moves
        put(Path(e.target), Path(e.source).read_bytes())
    drop.add_file(fastq_relpath(sample=0, lane=0))  # a late file that sorts first
    again = by_file(drop.plan())
    assert all(again[e.relpath].target == e.target and again[e.relpath].reason is Reason.ALREADY_SYNCED
               for e in first.entries)
    assert again[fastq_relpath(sample=0, lane=0)].variables["run"] == "301"


def test_run_sequence_without_run_placeholder_has_one_target(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "flat/<name>") | {"filename_sequence": "run"})
    drop.add_file("a.txt", b"mine")
    put(drop.repository / "flat/a.txt", b"them")
    (entry,) = drop.plan().entries
    assert (entry.reason, entry.variables["run"]) == (Reason.TARGET_CONFLICT, "1")


def test_run_in_a_folder_name_skips_a_file_of_that_name(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "v<run>/<name>") | {"filename_sequence": "run"})
    drop.add_file("a.txt", b"mine")
    put(drop.repository / "v1", b"a file where run 1 would need a folder")
    (entry,) = drop.plan().entries
    assert (entry.reason, entry.target_relpath) == (None, "v2/a.txt")


def test_without_sequence_existing_target(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "flat/<name>"))
    drop.add_file("a/same.fastq.gz", b"same")
    drop.add_file("a/diff.fastq.gz", b"mine")
    put(drop.repository / "flat/same.fastq.gz", b"same")
    put(drop.repository / "flat/diff.fastq.gz", b"them")  # same size, other bytes
    got = by_file(drop.plan())
    assert got["a/same.fastq.gz"].reason is Reason.ALREADY_SYNCED
    assert got["a/diff.fastq.gz"].reason is Reason.TARGET_CONFLICT
    assert [e.relpath for e in stopped(drop.plan())] == ["a/diff.fastq.gz"]


def test_two_files_never_plan_the_same_target(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "flat/<name>"))
    drop.add_file("a/x.fastq.gz", b"one")
    drop.add_file("b/x.fastq.gz", b"two")
    drop.add_file("c/x.fastq.gz", b"one")
    got = by_file(drop.plan())
    assert got["a/x.fastq.gz"].reason is None
    assert got["b/x.fastq.gz"].reason is Reason.TARGET_CONFLICT
    assert got["c/x.fastq.gz"].reason is Reason.TARGET_CONFLICT  # even with identical content
    going = [e.target for e in drop.plan().entries if e.goes_ahead]
    assert going == [str(drop.repository / "flat/x.fastq.gz")]


def test_hash_is_upper_case_crc32_of_content(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "h/<hash>_<name>") | {"filename_sequence": "hash"})
    drop.add_file("hello.txt", b"hello")  # CRC32("hello") = 0x3610A686
    drop.add_file("empty.txt", b"")
    drop.add_file("copy/hello.txt", b"hello")  # same name and content: same target, planned first
    got = by_file(drop.plan())
    assert got["hello.txt"].variables["hash"] == "3610A686"
    assert got["copy/hello.txt"].target_relpath == "h/3610A686_hello.txt"
    assert got["copy/hello.txt"].reason is None
    assert got["empty.txt"].target_relpath == "h/00000000_empty.txt"
    assert got["hello.txt"].reason is Reason.TARGET_CONFLICT


def test_today_comes_from_the_plan_time(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "<today>/<name>"))
    drop.add_file("f.txt")
    plan = drop.plan(now=datetime(2027, 1, 2, 23, 59, tzinfo=timezone.utc))
    assert plan.today == "2027-01-02" and plan.created_at == "2027-01-02T23:59:00+00:00"
    assert plan.entries[0].target_relpath == "2027-01-02/f.txt"


def test_processed_keeps_the_drop_relative_path(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    drop.add_file("ignored.txt")
    entries = by_file(drop.plan())
    assert entries[SEED_FILE].processed == str(drop.processed / SEED_FILE)


def test_processed_rebase_from(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, processed_rebase_from=".."))
    drop.add_file(SEED_FILE)
    (entry,) = drop.plan().entries
    assert entry.processed == str(drop.processed / drop.path.name / SEED_FILE)


def test_processed_rebase_must_contain_the_drop(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.root / "elsewhere").mkdir()
    drop.write_config(seed_config(drop.repository, drop.processed, processed_rebase_from="../elsewhere"))
    with pytest.raises(ConfigError, match="processed_rebase_from: .*elsewhere does not contain the drop folder"):
        drop.plan()


def test_something_at_the_processed_destination_is_exists(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    put(drop.processed / SEED_FILE, b"an earlier original")
    plan = drop.plan()
    assert plan.entries[0].processed_taken and move_action(plan.entries[0]) == "would_skip:exists"
    assert stopped(plan) == list(plan.entries)


def test_sidecars_and_sync_yml_are_never_candidates(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "all/<name>"))
    drop.add_file("a.fastq.gz", md5="correct")
    drop.add_file("b.fastq.gz", md5="wrong")
    drop.add_file("c.fastq.gz")
    drop.add_file("c.fastq.gz.blake3", b"0000  c.fastq.gz\n")
    got = by_file(drop.plan())
    assert sorted(got) == ["a.fastq.gz", "b.fastq.gz", "c.fastq.gz"]
    assert got["a.fastq.gz"].md5_sidecar == str(drop.path / "a.fastq.gz.md5")
    assert got["c.fastq.gz"].md5_sidecar is None


def test_non_matching_files_are_listed_not_counted(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, drop_filename_filter="**/*"))
    drop.add_file("README.txt")
    drop.add_file(SEED_FILE)
    plan = drop.plan()
    readme = by_file(plan)["README.txt"]
    assert (readme.matched, readme.reason, readme.target) == (False, Reason.SKIPPED_NON_MATCH, None)
    assert readme.variables == {} and not readme.goes_ahead
    assert plan.counts() == {"skipped_non_match": 1, "go": 1}
    assert stopped(plan) == []


def test_replacements_before_lookups(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(
        drop.repository, drop.processed,
        replacements={"before_match": [{"target": "var", "name": "phase", "replace": "-", "with": ""}]},
        lookups={"phase": {"btki": "BTKi", "bt-ki": "WRONG"}},
    ))
    drop.add_file(fastq_relpath(phase="bt-ki"))
    (entry,) = drop.plan().entries
    assert entry.variables["phase"] == "BTKi"
    assert entry.target_relpath.startswith("scRNA/raw/BTKi/")


def test_values_with_backslash_and_dollar_are_literal(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "out/<name>", lookups={"dir": {"d": "$1\\g<0>"}}))
    drop.add_file("d/a$1\\2${x}.txt")
    (entry,) = drop.plan().entries
    assert entry.target_relpath == "out/a$1\\2${x}.txt"
    drop.write_config(simple_config(drop, "<dir>/<name>", lookups={"dir": {"d": "$1\\g<0>"}}))
    assert drop.plan().entries[0].target_relpath == "$1\\g<0>/a$1\\2${x}.txt"


@pytest.mark.parametrize("value", ["..", "../outside", "a/../../outside", "/etc", "/"])
def test_rendered_paths_leaving_the_repository_are_unsafe(tmp_path: Path, value: str) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "<dir>/<name>", lookups={"dir": {"d": value}}))
    drop.add_file("d/f.txt")
    (entry,) = drop.plan().entries
    assert entry.reason is Reason.UNSAFE_PATH and entry.target is None
    assert copy_action(entry) == "would_skip:unsafe_path" and move_action(entry) == "would_skip:unsafe_path"


def test_dots_inside_names_are_fine(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "<dir>/<name>"))
    drop.add_file("a..b/x..R1.fastq.gz")
    drop.add_file("...x/.hidden")
    got = by_file(drop.plan())
    assert got["a..b/x..R1.fastq.gz"].target == str(drop.repository / "a..b/x..R1.fastq.gz")
    assert got["...x/.hidden"].reason is None


def test_symlinked_repository_folder_pointing_outside_is_unsafe(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (drop.repository / "scRNA").mkdir()
    (drop.repository / "scRNA" / "raw").symlink_to(outside)
    drop.add_file(SEED_FILE)
    (entry,) = drop.plan().entries
    assert entry.reason is Reason.UNSAFE_PATH and entry.target is None


def test_run_slot_linking_outside_is_taken_never_read(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    outside = put(tmp_path / "outside.fastq.gz", fastq_content(SEED_FILE))  # identical content, outside
    target = drop.repository / SEED_TARGET
    target.parent.mkdir(parents=True)
    target.symlink_to(outside)
    (entry,) = drop.plan().entries
    assert entry.reason is None  # not `already_synced` through a link out of the repository
    assert entry.target == str(target).replace("_r1_", "_r2_")
    drop.write_config(seed_config(drop.repository, drop.processed, filename_sequence=None, fields=None,
                                  repository_filename=SEED_TARGET))
    (entry,) = drop.plan().entries  # the only possible target resolves outside
    assert entry.reason is Reason.UNSAFE_PATH and entry.target is None


def test_symlink_inside_the_repository_is_fine(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.repository / "real").mkdir()
    (drop.repository / "scRNA").symlink_to(drop.repository / "real")
    drop.add_file(SEED_FILE)
    (entry,) = drop.plan().entries
    assert entry.reason is None and entry.target == str(drop.repository / SEED_TARGET)


def test_symlink_out_of_the_drop_is_unsafe_and_never_copied(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    secret = put(tmp_path / "secret" / "x.fastq.gz", b"secret")
    link = drop.path / fastq_relpath(sample=9)
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    drop.add_file(SEED_FILE)
    got = by_file(drop.plan())
    bad = got[fastq_relpath(sample=9)]
    assert (bad.matched, bad.reason, bad.target) == (True, Reason.UNSAFE_PATH, None)
    assert copy_action(bad) == "would_skip:unsafe_path"
    assert got[SEED_FILE].variables["run"] == "1"  # the link did not take a run number
    assert stopped(drop.plan()) == [bad]


def test_folders_outside_allowed_roots_are_refused(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    only_repo = drop.settings(DROPSYNC_ALLOWED_ROOTS=str(drop.repository))
    with pytest.raises(ConfigError, match="processed_folder: .* is outside DROPSYNC_ALLOWED_ROOTS"):
        drop.plan(settings=only_repo)
    drop.write_config(seed_config(tmp_path / "elsewhere", drop.processed))
    with pytest.raises(ConfigError, match="repository_folder: .*elsewhere is outside DROPSYNC_ALLOWED_ROOTS"):
        drop.plan()


def test_repository_link_out_of_allowed_roots_is_refused(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.repository / "alias").symlink_to(tmp_path / "elsewhere")
    drop.write_config(seed_config(drop.repository / "alias", drop.processed))
    with pytest.raises(ConfigError, match="repository_folder: .*elsewhere is outside"):
        drop.plan()


def test_without_allowed_roots_planning_works(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    plan = drop.plan(settings=drop.settings(DROPSYNC_ALLOWED_ROOTS=None))
    assert plan.entries[0].target == str(drop.repository / SEED_TARGET)


def test_a_file_where_a_folder_should_be_is_a_conflict(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE)
    put(drop.repository / "scRNA/raw/btki", b"a file, not a folder")
    result: list[Plan] = []
    worker = threading.Thread(target=lambda: result.append(drop.plan()), daemon=True)
    worker.start()
    worker.join(timeout=20)  # `<run>` can never free this slot: planning must not spin
    assert result and result[0].entries[0].reason is Reason.TARGET_CONFLICT


def test_a_folder_at_the_target_is_not_identical_content(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.repository / SEED_TARGET).mkdir(parents=True)
    size = (drop.repository / SEED_TARGET).stat().st_size
    drop.add_file(SEED_FILE, b"x" * size)  # same size as the folder entry
    (entry,) = drop.plan().entries
    assert entry.reason is None and entry.variables["run"] == "2"
    drop.write_config(seed_config(drop.repository, drop.processed, filename_sequence=None, fields=None,
                                  repository_filename=SEED_TARGET.replace("_r1_", "_rX_")))
    (drop.repository / SEED_TARGET.replace("_r1_", "_rX_")).mkdir()
    assert drop.plan().entries[0].reason is Reason.TARGET_CONFLICT


class TableMatcher:
    """A real in-memory metadata source: rows keyed by `<prefix>`, one source named `lk`."""

    def __init__(self, rows: dict[str, dict[str, str]]) -> None:
        self.rows = rows

    def match(self, variables: Mapping[str, str]) -> MetadataResult:
        row = self.rows.get(variables["prefix"])
        if row is None:
            return MetadataResult({}, {}, Reason.METADATA_MISSING)
        return MetadataResult({"lk": row}, {"patient": row["Name"].split("_")[0], "lib": "NOT_USED"})


def test_metadata_seam_derives_without_overwriting(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(
        drop.repository, drop.processed, fields=None, field_parameters=None,
        metadata_sources=[{"name": "lk", "type": "labkey", "schema": "exp", "table": "data"}],
        metadata_match={"key_template": "<prefix>", "search": [{"source": "lk", "field": "Uploaded_Filename_Prefix"}]},
        metadata_derive=[{"source": "lk", "field": "Name", "regex": "^(?P<patient>[^_]+)"}],
        replacements={"before_match": [{"target": "var", "name": "patient", "replace": "-", "with": "."}]},
        repository_filename="<patient>/<lk.Name>/<lib>_r<run>.fastq.gz",
    ))
    drop.add_file(SEED_FILE)
    drop.add_file(fastq_relpath(sample=2))
    plan = drop.plan(metadata=TableMatcher({"ABC_DEFGHI_S1_L001": {"Name": "MTR-A-001_V01"}}))
    got = by_file(plan)
    assert got[SEED_FILE].target_relpath == "MTR.A.001/MTR-A-001_V01/ABC_DEFGHI_r1.fastq.gz"
    assert got[SEED_FILE].metadata == {"lk": {"Name": "MTR-A-001_V01"}}
    assert got[fastq_relpath(sample=2)].reason is Reason.METADATA_MISSING
    assert got[fastq_relpath(sample=2)].target is None


def test_planning_changes_nothing_on_disk(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.add_file(SEED_FILE, md5="wrong")
    drop.add_file(fastq_relpath(sample=2))
    put(drop.repository / SEED_TARGET, b"other")

    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(tmp_path.rglob("*"))}

    before = snapshot()
    drop.plan()
    assert snapshot() == before


def test_plan_is_frozen_and_round_trips_through_json(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, drop_filename_filter="**/*"))
    drop.add_file(SEED_FILE, md5="correct")
    drop.add_file("notes.txt")
    plan = drop.plan(now=NOW)
    with pytest.raises(ValidationError):
        plan.drop = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        plan.entries[0].target = "/elsewhere"  # type: ignore[misc]
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan
    assert by_file(again)["notes.txt"].reason is Reason.SKIPPED_NON_MATCH
    assert by_file(again)[SEED_FILE].md5_sidecar == f"{drop.path / SEED_FILE}.md5"
    assert again.drop == drop.key and again.created_at == NOW.isoformat()


def test_odd_files_are_held_and_the_plan_is_still_json(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(simple_config(drop, "<dir>/<name>"))
    drop.add_file("sub/ok.bin", b"ok")
    with open(os.fsencode(str(drop.path)) + b"/sub/bad\xff.bin", "wb") as f:
        f.write(b"x")
    os.mkfifo(drop.path / "sub" / "pipe.bin")
    (drop.path / "sub" / "zero.bin").symlink_to("/dev/zero")
    plan = drop.plan()
    got = {e.relpath: e.reason for e in plan.entries}
    assert got == {
        "sub/ok.bin": None, "sub/bad\\xff.bin": Reason.BAD_NAME,
        "sub/pipe.bin": Reason.UNSAFE_PATH, "sub/zero.bin": Reason.UNSAFE_PATH,
    }
    assert Plan.model_validate_json(plan.model_dump_json()) == plan
    assert by_file(plan)["sub/ok.bin"].inode == (drop.path / "sub/ok.bin").stat().st_ino


@pytest.mark.timeout(60, method="thread")  # `re` would backtrack for ages in C, deaf to signals
def test_a_catastrophic_regex_is_a_configuration_error_not_a_hang(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
                                  drop_filename_filter="**/*", drop_filename_regex=r"(?P<phase>(a|aa)+)$",
                                  repository_filename="<phase>_r<run>"))
    drop.add_file("a" * 60 + "b")
    with pytest.raises(ConfigError, match=r"sync\.yml: drop_filename_regex: matching took longer than 1 s"):
        drop.plan()
