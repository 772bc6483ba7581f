"""Quarantine with automatic retry, through the real CLI and Dagster: a file held for a wrong
`.md5` leaves the drop with a note, shows in `dropsync status`, and is synced by itself once a
corrected `.md5` arrives (the sensor notices, the next run takes it back and syncs it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster.core.status.files import file_id
from dropsync_dagster_tests.support.dagster_env import run_job, storage_for
from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.test_cli_sync import dropsync, target
from dropsync_dagster_tests.test_sensors import Ticker

BAD = fastq_relpath(read=1)
GOOD = fastq_relpath(read=2)


def quarantine_drop(tmp_path: Path) -> tuple[Drop, Path]:
    """A ready drop without LabKey: BAD with a wrong `.md5`, GOOD with a right one; a quarantine
    folder under the allowed roots."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(BAD, md5="wrong")
    drop.add_file(GOOD, md5="correct")
    drop.mark_ready()
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    return drop, quarantine


def with_quarantine(drop: Drop, quarantine: Path) -> dict[str, str]:
    """The drop's environment with the quarantine on (its folder among the allowed roots)."""
    allowed = os.pathsep.join([str(drop.repository), str(drop.processed), str(quarantine)])
    return {"DROPSYNC_QUARANTINE_DIR": str(quarantine), "DROPSYNC_ALLOWED_ROOTS": allowed}


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_a_wrong_md5_is_quarantined_then_synced_by_itself_after_a_corrected_md5(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    data = (drop.path / BAD).read_bytes()
    wrong_md5 = (drop.path / f"{BAD}.md5").read_text().split()[0]
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop, storage=storage(drop, env))
        assert ticker.run_keys(ticker.tick()) == []  # the first tick registers the drop as historical

        done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", **env)
        assert done.returncode == 1, done.stderr  # a held file: exit 1, not a failed drop
        assert "quarantined:md5_mismatch" in done.stdout
        held = quarantine / drop.key / BAD
        assert held.read_bytes() == data and not (drop.path / BAD).exists()
        assert (Path(f"{held}.md5")).read_text().split()[0] == wrong_md5  # the sidecar travelled with it
        note = json.loads(Path(f"{held}.quarantine.json").read_text())
        assert note["reason"] == "md5_mismatch" and note["drop"] == drop.key and note["relpath"] == BAD
        assert note["expected"] == {"md5": wrong_md5}
        assert note["actual"]["md5"] == hashlib.md5(data).hexdigest()
        assert len(note["actual"]["blake3"]) == 64 and note["plan_id"] and note["quarantined_at"]
        assert target(drop, 2).exists()

        shown = dropsync(drop, "status", drop.key, **env)
        assert shown.returncode == 0, shown.stderr
        assert "quarantined (md5_mismatch)" in shown.stdout
        assert wrong_md5 in shown.stdout and hashlib.md5(data).hexdigest() in shown.stdout
        listed = json.loads(dropsync(drop, "status", drop.key, "--json", **env).stdout)[0]
        assert listed["status"] == "synced" and listed["counts"]["quarantined:md5_mismatch"] == 1
        assert [q["relpath"] for q in listed["quarantined"]] == [BAD]
        store = SqliteStatusStore(tmp_path / "state" / DEFAULT_FILENAME)
        doc = store.get_file(file_id(drop.key, BAD)).model_dump(by_alias=True)
        assert doc["move"] == "held" and doc["held_reason"] == "md5_mismatch"
        assert doc["quarantine"]["state"] == "quarantined" and doc["quarantine"]["path"] == str(held)

        assert ticker.run_keys(ticker.tick()) == []  # our own moves never trigger a run
        Path(drop.path / f"{BAD}.md5").write_text(f"{hashlib.md5(data).hexdigest()}  {Path(BAD).name}\n")
        assert ticker.run_keys(ticker.tick()) == [drop.key]  # the corrected sidecar: the drop runs again

        assert run_job(drop, instance, storage=storage(drop, env)).success
        assert target(drop, 1).read_bytes() == data
        assert (drop.processed / BAD).read_bytes() == data and not (drop.path / BAD).exists()
        assert files_in(quarantine) == []  # nothing left in quarantine, nothing duplicated
        doc = store.get_file(file_id(drop.key, BAD)).model_dump(by_alias=True)
        assert doc["move"] == "moved" and doc["quarantine"]["state"] == "returned"
        assert doc["quarantine"]["superseded"] == {"md5": wrong_md5}
        assert store.get(drop.key).counts == {"moved": 1}  # this run planned the returned file alone
        assert ticker.run_keys(ticker.tick()) == []


def test_a_correction_that_is_still_wrong_is_quarantined_again(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        held = quarantine / drop.key / BAD
        assert held.exists()
        Path(drop.path / f"{BAD}.md5").write_text("0" * 32 + f"  {Path(BAD).name}\n")  # another wrong one
        result = run_job(drop, instance, storage=storage(drop, env))
        assert result.success
        shown = result.asset_materializations_for_node("archived_originals")[0].metadata
        assert f"state quarantined at {held}" in shown["held_back"].value and shown["quarantined_files"].value == 1
        check = result.get_asset_check_evaluations()[-1]
        assert check.check_name == "originals_accounted_for" and check.metadata["problem_count"].value == 0
        assert held.read_bytes() == fastq_content(BAD) and not (drop.path / BAD).exists()
        assert Path(f"{held}.md5").read_text().startswith("0" * 32)  # the newest sidecar is kept with it
        assert json.loads(Path(f"{held}.quarantine.json").read_text())["expected"] == {"md5": "0" * 32}
        assert not target(drop, 1).exists()


def test_with_the_setting_off_a_wrong_md5_is_held_in_place(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
        assert result.success
        assert (drop.path / BAD).read_bytes() == fastq_content(BAD) and Path(f"{drop.path / BAD}.md5").exists()
        assert files_in(quarantine) == []
        moved = result.asset_materializations_for_node("archived_originals")[0].metadata
        assert moved["outcome/held:md5_mismatch"].value == 1 and moved["quarantined_files"].value == 0


def test_a_quarantine_folder_outside_the_allowed_roots_is_refused_at_start_up(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    done = dropsync(drop, "status", DROPSYNC_QUARANTINE_DIR=str(quarantine))  # not among the allowed roots
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"dropsync: configuration error: DROPSYNC_QUARANTINE_DIR: {quarantine} is outside DROPSYNC_ALLOWED_ROOTS "
        f"({os.pathsep.join([str(drop.repository), str(drop.processed)])})"]


def storage(drop: Drop, env: dict[str, str]) -> StorageResource:
    """The StorageResource of the drop with these DROPSYNC_* values laid over its own."""
    return storage_for(drop.env(**env))


def test_with_archives_required_the_returned_file_is_archived_then_moved(tmp_path: Path, gpg_keys) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    gpg = GpgResource(gnupghome=gpg_keys.home, recipients=[gpg_keys.recipients[0]], archive_dir=str(tmp_path / "archive"),
                      key_dir=str(tmp_path / "keys"), require_archive=True)
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env), gpg=gpg).success
        assert (quarantine / drop.key / BAD).exists()
        data = fastq_content(BAD)
        Path(drop.path / f"{BAD}.md5").write_text(f"{hashlib.md5(data).hexdigest()}  {Path(BAD).name}\n")
        assert run_job(drop, instance, storage=storage(drop, env), gpg=gpg).success
        assert (drop.processed / BAD).read_bytes() == data and target(drop, 1).read_bytes() == data
        assert files_in(quarantine) == []
