"""The sensor's rules at scale (core.watch.tick on real folders): 10,000 synced drops cost a
folder walk each, files are read only where a folder changed, and the cursor stays small."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from dropsync_dagster.core.drops import watch
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.deployment import settings_from_env
from dropsync_dagster.core.drops.watch import TickPlan, tick
from dropsync_dagster_tests.support.drops import fastq_relpath

SYNCED = 10_000
NESTED = "scRNA/btki/2026-11-20/SEQ_ABCDE"  # what a synced drop keeps: its folders, emptied by the moves
HOUR_NS = 3600 * 10**9
SYNC_YML = """\
drop_filename_filter: "**/*.fastq.gz"
drop_filename_regex: "(?P<name>.+)"
repository_folder: {base}/repository
repository_filename: "<name>"
processed_folder: {base}/processed
"""


def add_drop(root: Path, name: str, files: list[str] = (), ready: bool = True) -> Path:
    """A drop folder with sync.yml, the nested folders of a sequencing drop, and `files`."""
    drop = root / name
    (drop / NESTED).mkdir(parents=True)
    (drop / "sync.yml").write_text(SYNC_YML.format(base=root.parent))
    for rel in files:
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel).write_bytes(rel.encode())
    if ready:
        (drop / ".ready").touch()
    return drop


def settings_for(base: Path) -> Settings:
    (base / "drops").mkdir(exist_ok=True)  # drop roots must be existing folders
    return settings_from_env({"DROPSYNC_DROP_ROOTS": f"seq={base / 'drops'}", "DROPSYNC_STATE_DIR": str(base / "state")})


class Looks:
    """Records which drops had their files listed (a spy around the real candidate_files)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.drops: set[str] = set()
        real = watch.candidate_files

        def spy(drop_dir: Path, pattern: str):
            self.drops.add(Path(drop_dir).name)
            return real(drop_dir, pattern)

        monkeypatch.setattr(watch, "candidate_files", spy)

    def take(self) -> set[str]:
        seen, self.drops = self.drops, set()
        return seen


class Work:
    """Counts what the ticks inside `with Work() as work:` do: folders listed (os.scandir) and
    paths stat'ed (os.stat, os.lstat)."""

    def __init__(self) -> None:
        self.listed = 0
        self.stats = 0
        self._real = {name: getattr(os, name) for name in ("scandir", "stat", "lstat")}

    def __enter__(self) -> "Work":
        for name, real in self._real.items():
            setattr(os, name, self._counted(name, real))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, real in self._real.items():
            setattr(os, name, real)

    def _counted(self, name: str, real):
        def call(*args, **kwargs):
            if name == "scandir":
                self.listed += 1
            else:
                self.stats += 1
            return real(*args, **kwargs)
        return call


def names(drops) -> list[str]:
    return sorted(d.path.name for d in drops)


def cursor_bytes(plan: TickPlan) -> int:
    return len(json.dumps(plan.cursor, separators=(",", ":")))


def test_ten_thousand_synced_drops_one_new_drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "drops"
    for i in range(SYNCED):
        add_drop(root, f"run_{i:05d}")
    settings = settings_for(tmp_path)
    # Registration (the first tick; more if its budget runs out): no runs.
    plan, registered = tick(settings, None), 0
    while True:
        assert plan.run == []
        registered += len(plan.register)
        if not plan.cursor["init"]:
            break
        plan = tick(settings, plan.cursor)
    assert registered == SYNCED
    assert cursor_bytes(plan) < 200

    looks = Looks(monkeypatch)
    add_drop(root, "run_new", [fastq_relpath(read=1), fastq_relpath(read=2)])
    with Work() as work:
        plan = tick(settings, plan.cursor)
    assert names(plan.run) == names(plan.register) == ["run_new"]
    assert looks.take() == {"run_new"}  # no synced drop had its files listed
    # The work of a tick, counted (its speed is in benchmarks/sensor.py): the root once, each drop's
    # five folders once, and the new drop's folders once more for its candidate files.
    levels = len(Path(NESTED).parts) + 1
    assert work.listed <= 1 + (SYNCED + 1) * levels + levels
    assert work.stats <= 3 * (SYNCED + 1) + 20  # per drop: its folder and its sync.yml (twice)

    plan = tick(settings, plan.cursor)
    assert plan.run == [] and looks.take() <= {"run_new"}  # only the fresh drop is watched closely

    # New data deep inside a synced drop: its folder changed, so it alone is listed, and runs.
    (root / "run_00017" / NESTED / "late_R1_001.fastq.gz").write_bytes(b"late")
    plan = tick(settings, plan.cursor)
    assert names(plan.run) == ["run_00017"]
    assert looks.take() - {"run_new"} == {"run_00017"}

    # A deleted drop folder is forgotten, not an error.
    shutil.rmtree(root / "run_00005")
    plan = tick(settings, plan.cursor)
    assert plan.run == [] and plan.problems == []
    index = json.loads((tmp_path / "state" / "sensor" / f"watch-{plan.cursor['gen']}.json").read_text())
    assert "seq-run_00005" not in index and "seq-run_00006" in index
    assert cursor_bytes(plan) < 2000


def ticks(settings: Settings, cursor: dict | None = None) -> TickPlan:
    return tick(settings, cursor, now_ns=time.time_ns() + HOUR_NS)  # every change judged an hour later


def registered(tmp_path: Path, *files: str) -> tuple[Path, Settings, TickPlan]:
    """Drop `run_a` holding `files` in its nested folder, after the first tick registered it."""
    drop = add_drop(tmp_path / "drops", "run_a", [f"{NESTED}/{f}" for f in files])
    settings = settings_for(tmp_path)
    plan = ticks(settings)
    assert names(plan.register) == ["run_a"] and plan.run == []
    return drop, settings, plan


def test_moves_and_sidecars_never_run_but_files_renamed_in_do(tmp_path: Path) -> None:
    drop, settings, plan = registered(tmp_path, "a_R1.fastq.gz", "a_R2.fastq.gz", "a_R3.fastq.gz")
    (tmp_path / "processed").mkdir()
    os.rename(drop / NESTED / "a_R1.fastq.gz", tmp_path / "processed" / "a_R1.fastq.gz")  # an original moved away
    (drop / NESTED / "a_R2.fastq.gz.blake3").write_text("0" * 64 + "  a_R2.fastq.gz\n")  # a sidecar written
    plan = ticks(settings, plan.cursor)
    assert plan.run == []
    staged = drop / NESTED / ".a_R4.fastq.gz.part"  # rsync's way: a temporary renamed into place
    staged.write_bytes(b"four")
    os.rename(staged, drop / NESTED / "a_R4.fastq.gz")
    assert names(ticks(settings, plan.cursor).run) == ["run_a"]


def test_an_edited_sync_yml_runs_the_drop_again(tmp_path: Path) -> None:
    drop, settings, plan = registered(tmp_path, "a_R1.fastq.gz")
    plan = ticks(settings, plan.cursor)
    assert plan.run == []
    (drop / "sync.yml").write_text((drop / "sync.yml").read_text() + "filename_sequence: run\n")
    assert names(ticks(settings, plan.cursor).run) == ["run_a"]


def test_a_broken_sync_yml_is_reported_and_the_tick_goes_on(tmp_path: Path) -> None:
    a, settings, plan = registered(tmp_path, "a_R1.fastq.gz")
    (a / "sync.yml").write_text("drop_filename_filter: [unclosed\n")
    (a / NESTED / "a_R2.fastq.gz").write_bytes(b"two")
    add_drop(tmp_path / "drops", "run_b", [f"{NESTED}/b_R1.fastq.gz"])
    plan = ticks(settings, plan.cursor)
    assert names(plan.run) == ["run_b"]
    assert any(p.startswith("seq-run_a: ") for p in plan.problems)


def test_an_arrival_on_the_same_timestamp_counts_while_the_drop_is_hot(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    plan = tick(settings, None)
    drop = add_drop(tmp_path / "drops", "run_a", [f"{NESTED}/a_R1.fastq.gz"])
    plan = tick(settings, plan.cursor)  # a new drop, judged now: its last change is recent, so it is hot
    assert names(plan.run) == ["run_a"] and list(plan.cursor["drops"]) == ["seq-run_a"]
    ctime = (drop / NESTED / "a_R1.fastq.gz").stat().st_ctime_ns
    # As if a_R1 had arrived on the clock tick the last look recorded but after the look: the
    # watermark equals its ctime and counts no file at it.
    cursor = {**plan.cursor, "drops": {"seq-run_a": [ctime, 0]}}
    assert names(tick(settings, cursor).run) == ["run_a"]
    cursor = {**plan.cursor, "drops": {"seq-run_a": [ctime, 1]}}
    assert tick(settings, cursor).run == []


def test_a_lost_index_registers_again_without_running(tmp_path: Path) -> None:
    _, settings, plan = registered(tmp_path, "a_R1.fastq.gz")
    assert plan.cursor["gen"] == 1
    shutil.rmtree(tmp_path / "state" / "sensor")
    plan = ticks(settings, plan.cursor)
    assert names(plan.register) == ["run_a"] and plan.run == []
    assert any("sensor index" in p for p in plan.problems)


def test_a_version_1_cursor_keeps_its_drops_without_running_them(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    drop = add_drop(root, "run_a", [f"{NESTED}/a_R1.fastq.gz"])
    settings = settings_for(tmp_path)
    plan = ticks(settings, {"v": 1, "drops": {"seq-run_a": {"fp": "00"}}, "next": 0})
    assert plan.register == [] and plan.run == []
    (drop / NESTED / "a_R2.fastq.gz").write_bytes(b"two")
    assert names(ticks(settings, plan.cursor).run) == ["run_a"]


@pytest.mark.parametrize("how", ["arrives", "corrected_in_place"])
def test_an_md5_beside_a_held_file_runs_the_drop_again(tmp_path: Path, how: str) -> None:
    """Defect (issue 11): a held file whose `.md5` was corrected (or arrived) later was never noticed."""
    drop, settings, plan = registered(tmp_path, "a_R1.fastq.gz", "a_R2.fastq.gz")
    sidecar = drop / NESTED / "a_R2.fastq.gz.md5"
    if how == "corrected_in_place":
        sidecar.write_text("0" * 32 + "  a_R2.fastq.gz\n")  # wrong: the file is held for md5_mismatch
        plan = ticks(settings, plan.cursor)
        assert names(plan.run) == ["run_a"]
        plan = ticks(settings, plan.cursor)
        assert plan.run == []  # nothing else changed
        time.sleep(0.01)  # a later ctime on any clock
        with sidecar.open("r+") as f:  # rewritten in place: no folder changes
            f.write("1" * 32)
    else:
        sidecar.write_text("1" * 32 + "  a_R2.fastq.gz\n")
    assert names(ticks(settings, plan.cursor).run) == ["run_a"]


def test_a_file_rewritten_in_place_runs_the_drop_again(tmp_path: Path) -> None:
    """Defect: a held file re-transferred in place under its old name (`cp`, `scp` onto it)
    changes no folder, and the walk looked at folders and `.md5` files only: never noticed."""
    drop, settings, plan = registered(tmp_path, "a_R1.fastq.gz")
    plan = ticks(settings, plan.cursor)
    assert plan.run == []
    time.sleep(0.01)  # a later ctime on any clock
    with (drop / NESTED / "a_R1.fastq.gz").open("r+b") as f:  # same name, same folder, new bytes
        f.write(b"A_R1")
    plan = ticks(settings, plan.cursor)
    assert names(plan.run) == ["run_a"]
    (drop / NESTED / "a_R1.fastq.gz.blake3").write_text("0" * 64 + "  a_R1.fastq.gz\n")  # our own sidecar: no run
    assert ticks(settings, plan.cursor).run == []
