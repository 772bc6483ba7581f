"""The drop results' IO manager in real runs (in-process executor, SQLite status store): results
flow as typed values and land as JSON per drop and asset, each run reads its own plan's results
and refuses another plan's in one line, and a process parses the plan and each result once."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.plan import frozen
from dropsync_dagster.core.result_files import PARSED
from dropsync_dagster.core.status.runs import claimed_plan_id
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster.resources.drop_results import DropResultsIOManager
from dropsync_dagster.cli.runner import first_failure
from dropsync_dagster_tests.assets.test_pipeline import plain_drop
from dropsync_dagster_tests.support.parsing import forget_parsed, new_process  # noqa: F401 (autouse fixture)
from dropsync_dagster_tests.support.dagster_env import SQLITE_STATUS, definitions_for, run_job, storage_for
from dropsync_dagster_tests.support.drops import Drop

STEPS = ("drop_checksums", "encrypted_archive", "repository_copies", "labkey_records", "archived_originals")


def materialise(drop: Drop, instance: dg.DagsterInstance, assets: list[str]) -> dg.ExecuteInProcessResult:
    """A run of the asset graph's job materialising `assets` of the drop (as the UI's Materialize)."""
    if drop.key not in instance.get_dynamic_partitions("drops"):
        instance.add_dynamic_partitions("drops", [drop.key])
    job = definitions_for(drop).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(partition_key=drop.key, instance=instance, raise_on_error=False,
                                  asset_selection=[dg.AssetKey(a) for a in assets])


def test_results_flow_as_typed_values_and_land_as_json_of_one_plan(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance)
    assert result.success
    folder = drop.settings().state_dir / "drops" / drop.key
    current = json.loads((folder / "drop_manifest.json").read_text())
    plan = result.output_for_node("drop_manifest")
    assert current["plan_id"] == plan.plan_id and (folder / current["plan"]).exists()
    for step in STEPS:
        doc = json.loads((folder / f"{step}.json").read_text())
        assert doc["plan_id"] == plan.plan_id, step  # every result names the plan it was made from
        assert result.output_for_node(step).model_dump(mode="json") == doc, step
        shown = result.asset_materializations_for_node(step)[0].metadata["result_json"]
        assert isinstance(shown, dg.PathMetadataValue) and shown.value == str(folder / f"{step}.json"), step
    assert result.asset_materializations_for_node("drop_manifest")[0].metadata["plan_json"].value == str(folder / current["plan"])
    # One process ran every step: the plan its first step froze was handed on, never parsed; each
    # result was parsed once, however many steps took it (drop_checksums: four).
    assert sum(frozen.PARSED_PLANS.parses.values()) == 0
    assert dict(PARSED.parses) == {f"{step}.json": 1 for step in STEPS[:-1]}


def test_a_run_starting_at_a_later_step_parses_the_plan_once(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        assert materialise(drop, instance, ["drop_manifest", "drop_checksums"]).success
        forget_parsed()  # the next run is a new process
        later = materialise(drop, instance, list(STEPS[1:]))
    assert later.success, first_failure(later)
    assert sum(frozen.PARSED_PLANS.parses.values()) == 1  # four steps took the plan; it was parsed once
    assert PARSED.parses["drop_checksums.json"] == 1  # and the checksums, which three steps took
    assert len(list(drop.processed.rglob("*.fastq.gz"))) == 2  # the md5 mismatch stays in the drop


def test_a_result_of_another_plan_is_refused_in_one_line(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    with dg.instance_for_test() as instance:
        first = materialise(drop, instance, ["drop_manifest", "drop_checksums"])
        assert first.success
        old = first.output_for_node("drop_manifest").plan_id
        dry = materialise(drop, instance, ["drop_manifest"])  # a new plan, made current
        new = dry.output_for_node("drop_manifest").plan_id
        refused = materialise(drop, instance, ["repository_copies"])
    assert not refused.success
    message = first_failure(refused)
    assert message == (f"step repository_copies failed: {drop.key}: the drop_checksums result at "
                       f"{drop.settings().state_dir}/drops/{drop.key}/drop_checksums.json belongs to plan {old}, "
                       f"not to this run's plan {new}; materialise drop_checksums again")
    assert not any(drop.repository.rglob("*.fastq.gz"))  # nothing copied from a stale result


def test_a_run_keeps_the_plan_its_claim_names(tmp_path: Path) -> None:
    """A re-execution or retry (same root run) works from the plan its run claimed the drop with,
    even after a dry run made a newer plan current; another run takes the current plan."""
    drop = plain_drop(tmp_path)
    store = SqliteStatusStore(drop.settings().state_dir / "status.sqlite3")
    store.register(drop.key, str(drop.path))
    store.claim(drop.key, "run-a", "host:1", 60, plan_id="plan-1")
    assert claimed_plan_id(store, drop.key, "run-a") == "plan-1"
    assert claimed_plan_id(store, drop.key, "run-b") is None
    assert claimed_plan_id(store, "seq-unknown", "run-a") is None


def test_results_are_kept_per_drop_partition() -> None:
    manager = DropResultsIOManager(storage=storage_for({"DROPSYNC_STATE_DIR": "/nonexistent"}), status=SQLITE_STATUS)
    context = dg.build_output_context(asset_key=dg.AssetKey("drop_checksums"))
    with pytest.raises(DropsyncError, match="^drop_checksums: drop results are kept per drop partition; materialise one drop partition$"):
        manager.handle_output(context, None)  # type: ignore[arg-type]
