"""`completion_files` in sync.yml: a drop is not ready until the files it names exist (besides the
deployment's sentinels) — for the sensor and for `dropsync sync`; the names are hostile input."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.syncyml.schema import MAX_COMPLETION_FILES, load_config
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.test_cli_sync import dropsync, target
from dropsync_dagster_tests.test_sensors import Ticker, new_drop

COMPLETE = "CopyComplete.txt"


def completion_drop(base: Path, name: str, *names: str) -> Drop:
    """A ready drop (`.ready` written) whose sync.yml names `names` as completion files."""
    drop = make_drop(base, name)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
                                  completion_files=list(names)))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.mark_ready()
    return drop


def test_the_sensor_waits_for_every_completion_file(tmp_path: Path) -> None:
    first = new_drop(tmp_path, "run_old")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, first)
        ticker.tick()
        drop = completion_drop(tmp_path, "run_new", COMPLETE, "RTAComplete.txt")
        assert ticker.run_keys(ticker.tick()) == []
        assert drop.key not in instance.get_dynamic_partitions("drops")  # not ready: not even registered
        (drop.path / COMPLETE).write_text("done\n")
        (drop.path / "RTAComplete.txt").symlink_to(drop.path / COMPLETE)  # a link is not the drop's own file
        assert ticker.run_keys(ticker.tick()) == []
        (drop.path / "RTAComplete.txt").unlink()
        (drop.path / "RTAComplete.txt").touch()
        assert ticker.run_keys(ticker.tick()) == [drop.key]


def test_dropsync_sync_refuses_until_the_completion_file_exists(tmp_path: Path) -> None:
    drop = completion_drop(tmp_path, "run_a", COMPLETE)
    refused = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert refused.returncode == 3
    assert refused.stderr.strip().splitlines() == [
        f"dropsync: refused: drop {drop.key} is not ready: completion file {COMPLETE} (sync.yml completion_files) "
        f"is missing in {drop.path}; to sync it anyway use `dropsync sync --ignore-readiness` or the run tag "
        "dropsync/ignore_readiness=true"]
    assert not target(drop, 1).exists()
    (drop.path / COMPLETE).touch()
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    assert target(drop, 1).exists()


@pytest.mark.parametrize("name", ["../CopyComplete.txt", "run/CopyComplete.txt", "..", ".", "", "a\\b", "a\0b",
                                  "x" * 256, "sync.yml"])
def test_hostile_completion_names_are_refused_with_their_line(tmp_path: Path, name: str) -> None:
    drop = make_drop(tmp_path)
    config = seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
                         completion_files=[COMPLETE, name])
    drop.write_config(yaml.safe_dump(config, sort_keys=False, width=1000))
    line = next(i for i, text in enumerate(drop.config_path.read_text().splitlines(), 1) if text.startswith("- ")) + 1
    with pytest.raises(ConfigError) as info:
        load_config(drop.config_path)
    assert str(info.value).startswith(f"{drop.config_path}:{line}: completion_files[1]: ")
    assert len(str(info.value).splitlines()) == 1


def test_too_many_completion_files_are_refused(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    names = [f"part{i}.done" for i in range(MAX_COMPLETION_FILES + 1)]
    drop.write_config(seed_config(drop.repository, drop.processed, completion_files=names))
    with pytest.raises(ConfigError, match=rf"sync.yml:\d+: completion_files: List should have at most {MAX_COMPLETION_FILES}"):
        load_config(drop.config_path)


def test_a_sync_yml_without_the_key_needs_no_completion_file(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    assert load_config(drop.config_path).completion_files == []
