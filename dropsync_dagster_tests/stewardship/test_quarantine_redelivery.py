"""A quarantined original delivered again under its own name: with the same bytes, the drop's
file is synced and the quarantined copy goes (one copy, in one place); with other bytes, the new
file is synced and the quarantined one stays for a person to compare."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.status.files import file_id
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster_tests.stewardship.test_quarantine import BAD, files_in, quarantine_drop, storage, with_quarantine
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.test_cli_sync import target


def redeliver(path: Path, data: bytes) -> None:
    """What a collaborator's upload does: the file again, then its (now right) `.md5`."""
    path.write_bytes(data)
    Path(f"{path}.md5").write_text(f"{hashlib.md5(data).hexdigest()}  {path.name}\n")


def test_the_same_bytes_delivered_again_sync_and_the_quarantined_copy_goes(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    data = (drop.path / BAD).read_bytes()
    wrong_md5 = (drop.path / f"{BAD}.md5").read_text().split()[0]
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        assert (quarantine / drop.key / BAD).read_bytes() == data
        redeliver(drop.path / BAD, data)
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert target(drop, 1).read_bytes() == data and (drop.processed / BAD).read_bytes() == data
    assert files_in(quarantine) == [] and not (quarantine / drop.key).exists()
    doc = SqliteStatusStore(tmp_path / "state" / DEFAULT_FILENAME).get_file(file_id(drop.key, BAD))
    quarantined = doc.model_dump(by_alias=True)["quarantine"]
    assert quarantined["state"] == "returned" and quarantined["how"] == "redelivered"
    assert quarantined["superseded"] == {"md5": wrong_md5}


def test_other_bytes_delivered_again_sync_and_the_quarantined_copy_stays(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    old = (drop.path / BAD).read_bytes()
    new = old + b"@the rest of the read, the first upload was cut short\n"
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, storage=storage(drop, env)).success
        redeliver(drop.path / BAD, new)
        assert run_job(drop, instance, storage=storage(drop, env)).success
    assert target(drop, 1).read_bytes() == new and (drop.processed / BAD).read_bytes() == new
    held = quarantine / drop.key / BAD
    assert held.read_bytes() == old and Path(f"{held}.quarantine.json").exists()


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
