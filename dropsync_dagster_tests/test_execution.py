"""One way to run, whatever launches it: the asset graph's `__ASSET_JOB` runs like `sync_drop`,
and a failed run of these assets counts against its drop whichever job it ran in."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository  # no public way to reconstruct __ASSET_JOB

from dropsync_dagster.definitions import defs
from dropsync_dagster.execution import RETRY_STRATEGY_TAG
from dropsync_dagster.runs import LAUNCHED_BY
from dropsync_dagster.sensors import failed_drop
from dropsync_dagster_tests.support.dagster_env import code_location_loaded_with
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config


def asset_graph_job() -> dg.JobDefinition:
    """What the asset graph's Materialize and its backfills launch."""
    return defs.resolve_implicit_global_asset_job_def()


# The job as a run worker loads it from the code location.
ASSET_JOB = ReconstructableRepository.for_module("dropsync_dagster.definitions", "defs").get_reconstructable_job("__ASSET_JOB")


def test_every_job_without_its_own_executor_runs_in_process() -> None:
    assert asset_graph_job().name == "__ASSET_JOB"
    assert asset_graph_job().executor_def.name == "in_process"
    assert defs.resolve_job_def("sync_drop").executor_def.name == "in_process"
    assert defs.resolve_job_def("sync_drop").tags[RETRY_STRATEGY_TAG] == "ALL_STEPS"


def test_an_asset_graph_run_is_retried_from_its_plan_and_runs_in_one_process(tmp_path) -> None:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1))
    drop.mark_ready()
    with code_location_loaded_with(drop.env()), dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("drops", [drop.key])
        # execute_job runs the job's own executor, as a run worker does (execute_in_process would not).
        with dg.execute_job(ASSET_JOB, instance, tags={"dagster/partition": drop.key}) as result:
            assert result.success
            run = instance.get_run_by_id(result.run_id)
            engine = [e.message or "" for e in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
    assert run.job_name == "__ASSET_JOB"
    assert run.tags[RETRY_STRATEGY_TAG] == "ALL_STEPS"
    assert any(m.startswith("Executing steps in process") for m in engine), engine
    assert (drop.processed / fastq_relpath(read=1)).exists()


def _run(job_name: str, tags: dict[str, str], assets: list[str] | None) -> dg.DagsterRun:
    return dg.DagsterRun(job_name=job_name, tags=tags,
                         asset_selection=None if assets is None else frozenset(dg.AssetKey(a) for a in assets))


def test_failures_count_against_the_drop_whatever_launched_the_run() -> None:
    partition = {"dagster/partition": "seq-run_a"}
    assert failed_drop(_run("sync_drop", partition, None)) == "seq-run_a"
    assert failed_drop(_run("__ASSET_JOB", partition, ["repository_copies"])) == "seq-run_a"
    assert failed_drop(_run("__ASSET_JOB", {**partition, "dagster/backfill": "abc"}, ["drop_manifest"])) == "seq-run_a"
    assert failed_drop(_run("__ASSET_JOB", partition, ["someone_elses_asset"])) is None
    assert failed_drop(_run("sync_drop", {**partition, LAUNCHED_BY: "cli"}, None)) is None  # the CLI counts its own
    assert failed_drop(_run("sync_drop", {}, None)) is None
