"""The drop sensor, evaluated as the daemon does: build_sensor_context + evaluate_tick."""

from __future__ import annotations

import json
import shutil

import dagster as dg

from dropsync_dagster.sensors import drop_sensor
from dropsync_dagster_tests.support.dagster_env import definitions_for, run_job, storage_for
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config


def new_drop(base, name: str, ready: bool = True) -> Drop:
    drop = make_drop(base, name)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2))
    if ready:
        drop.mark_ready()
    return drop


class Ticker:
    """Evaluates ticks in sequence, carrying the cursor and applying partition requests."""

    def __init__(self, instance: dg.DagsterInstance, drop: Drop, **resources: object) -> None:
        self.instance, self.defs, self.cursor = instance, definitions_for(drop, **resources), None

    def tick(self) -> dg.SensorExecutionData:
        ctx = dg.build_sensor_context(
            instance=self.instance, instance_ref=self.instance.get_ref(), cursor=self.cursor,
            definitions=self.defs, resources={k: self.defs.resources[k] for k in ("storage", "status")},
        )
        data = drop_sensor.evaluate_tick(ctx)
        self.cursor = data.cursor
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return data

    def run_keys(self, data: dg.SensorExecutionData) -> list[str]:
        return sorted(r.partition_key for r in data.run_requests or [])


def test_first_tick_registers_without_running_then_new_drops_run(tmp_path) -> None:
    a = new_drop(tmp_path, "run_a")
    new_drop(tmp_path, "run_b")
    new_drop(tmp_path, "run_waiting", ready=False)
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, a)
        first = ticker.tick()
        assert ticker.run_keys(first) == []
        assert sorted(instance.get_dynamic_partitions("drops")) == ["seq-run_a", "seq-run_b"]
        assert ticker.run_keys(ticker.tick()) == []
        new_drop(tmp_path, "run_c")
        assert ticker.run_keys(ticker.tick()) == ["seq-run_c"]
        assert "seq-run_c" in instance.get_dynamic_partitions("drops")
        assert ticker.run_keys(ticker.tick()) == []  # requested once, not again
        (tmp_path / "drops/run_waiting/.ready").touch()
        assert ticker.run_keys(ticker.tick()) == ["seq-run_waiting"]


def test_own_writes_never_trigger_but_new_files_do(tmp_path) -> None:
    drop = new_drop(tmp_path, "run_a")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop)
        ticker.tick()
        drop.add_file(fastq_relpath(read=3))  # arrives after registration: the drop changed
        assert ticker.run_keys(ticker.tick()) == ["seq-run_a"]
        assert run_job(drop, instance).success  # writes .blake3 sidecars, moves originals
        assert not (drop.path / fastq_relpath(read=2)).exists()
        assert ticker.run_keys(ticker.tick()) == []
        assert ticker.run_keys(ticker.tick()) == []
        drop.add_file(fastq_relpath(read=4))  # new data in a synced drop, in a nested folder
        assert ticker.run_keys(ticker.tick()) == ["seq-run_a"]


def test_failed_transfer_is_reported_not_registered(tmp_path) -> None:
    good = new_drop(tmp_path, "run_good", ready=False)
    good.mark_ready()
    bad = new_drop(tmp_path, "run_bad", ready=False)
    bad.mark_ready(rsync_exitcode="23")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, good)
        ticker.tick()
        new_drop(tmp_path, "run_new")
        data = ticker.tick()
        assert ticker.run_keys(data) == ["seq-run_new"]
        assert "seq-run_bad" not in instance.get_dynamic_partitions("drops")
        assert list(json.loads(ticker.cursor)["transfer_failed"]) == ["seq-run_bad"]
        bad.mark_ready(rsync_exitcode="0")  # the transfer was repaired: now it is a new drop
        assert ticker.run_keys(ticker.tick()) == ["seq-run_bad"]


def test_deleted_drop_does_not_break_the_sensor(tmp_path) -> None:
    a = new_drop(tmp_path, "run_a")
    new_drop(tmp_path, "run_b")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, a)
        ticker.tick()
        shutil.rmtree(tmp_path / "drops/run_b")
        assert ticker.run_keys(ticker.tick()) == []
        assert "seq-run_b" not in json_keys(ticker.cursor)


def json_keys(cursor: str) -> list[str]:
    return list(json.loads(cursor)["drops"])


def test_without_drop_roots_the_tick_history_says_so(tmp_path) -> None:
    drop = new_drop(tmp_path, "run_a")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop, storage=storage_for(drop.env(DROPSYNC_DROP_ROOTS=None)))
        data = ticker.tick()
        assert data.run_requests == []
        assert data.skip_message.startswith("DROPSYNC_DROP_ROOTS is not set: no drop folder to watch")
        assert ".env" in data.skip_message


def test_skip_reasons_say_what_the_tick_did(tmp_path) -> None:
    drop = new_drop(tmp_path, "run_a")
    new_drop(tmp_path, "run_b")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop)
        assert ticker.tick().skip_message.startswith("registered 2 ready drop(s) as partitions without running them")
        assert ticker.tick().skip_message == f"no new or changed ready drop under seq={tmp_path / 'drops'}"
        new_drop(tmp_path, "run_c")
        data = ticker.tick()
        assert ticker.run_keys(data) == ["seq-run_c"] and data.skip_message is None


def test_a_broken_sync_yml_is_a_skip_reason_once_per_change(tmp_path) -> None:
    drop = new_drop(tmp_path, "run_a")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop)
        ticker.tick()
        broken = new_drop(tmp_path, "run_broken")
        (broken.path / "sync.yml").write_text("drop_filename_filter: [unclosed\n")
        first = ticker.tick()
        assert first.run_requests == []
        assert first.skip_message.startswith("seq-run_broken: ") and "sync.yml" in first.skip_message
        assert "seq-run_broken" not in ticker.tick().skip_message  # not on every tick
        assert "seq-run_broken" not in ticker.tick().skip_message
        (broken.path / "sync.yml").write_text("drop_filename_filter: [still unclosed\n")  # a change
        assert ticker.tick().skip_message.startswith("seq-run_broken: ")
        assert "seq-run_broken" not in ticker.tick().skip_message
        broken.write_config(seed_config(broken.repository, broken.processed, labkey=None, fields=None, field_parameters=None))
        assert ticker.run_keys(ticker.tick()) == ["seq-run_broken"]


def test_a_failed_transfer_is_a_skip_reason_once(tmp_path) -> None:
    drop = new_drop(tmp_path, "run_a")
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, drop)
        ticker.tick()
        bad = new_drop(tmp_path, "run_bad", ready=False)
        bad.mark_ready(rsync_exitcode="23")
        assert ticker.tick().skip_message.startswith("seq-run_bad: transfer failed")
        assert "seq-run_bad" not in ticker.tick().skip_message
