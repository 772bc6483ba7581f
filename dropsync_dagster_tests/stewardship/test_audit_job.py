"""The scheduled fixity audit through Dagster: per-drop checks, the schedule and its cron."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.stewardship import audits
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.stewardship.settings import DEFAULT_AUDIT_CRON
from dropsync_dagster.deployment.stewardship import audit_from_env
from dropsync_dagster_tests.stewardship.synced import Synced, flip_bit, sync
from dropsync_dagster_tests.support.dagster_env import definitions_for
from dropsync_dagster_tests.support.drops import fastq_relpath


def audit(synced: Synced, instance: dg.DagsterInstance, defs: dg.Definitions) -> dict[str, dg.AssetCheckEvaluation]:
    job = defs.resolve_job_def(audits.AUDIT_JOB)
    result = job.execute_in_process(instance=instance, tags={audits.PARTITION_TAG: synced.drop.key}, raise_on_error=False)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_audit_job_passes_a_clean_drop_and_fails_a_rotted_one_naming_the_files(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
        defs = definitions_for(synced.drop, gpg=synced.gpg())
        clean = audit(synced, instance, defs)
        assert {name: e.passed for name, e in clean.items()} == {audits.REPOSITORY_FIXITY: True, audits.ARCHIVE_FIXITY: True}
        assert clean[audits.REPOSITORY_FIXITY].partition == synced.drop.key
        assert clean[audits.REPOSITORY_FIXITY].asset_key == dg.AssetKey("repository_copies")
        assert clean[audits.ARCHIVE_FIXITY].asset_key == dg.AssetKey("encrypted_archive")

        flip_bit(synced.target(2), 10)
        flip_bit(synced.archive(1), synced.archive(1).stat().st_size // 2)
        rotted = audit(synced, instance, defs)
    for name in (audits.REPOSITORY_FIXITY, audits.ARCHIVE_FIXITY):
        assert rotted[name].passed is False
        assert rotted[name].severity == dg.AssetCheckSeverity.ERROR
        assert fastq_relpath(read=2) in rotted[name].metadata["problems"].value
    assert rotted[audits.REPOSITORY_FIXITY].metadata["problem_count"].value == 1


def test_only_the_audit_job_audits(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
        defs = definitions_for(synced.drop, gpg=synced.gpg())
        assert "fixity_checks" not in defs.resolve_job_def("sync_drop").graph.node_names()
        # The asset graph's Materialize selects every check of the assets: the audit's yield nothing there.
        materialized = defs.resolve_job_def("__ASSET_JOB").execute_in_process(
            instance=instance, partition_key=synced.drop.key, raise_on_error=False)
    assert materialized.success
    checks = {e.check_name for e in materialized.get_asset_check_evaluations()}
    assert "copies_match_source_digests" in checks and not checks & {audits.REPOSITORY_FIXITY, audits.ARCHIVE_FIXITY}


def test_schedule_uses_the_configured_cron_and_sample_and_runs_every_drop() -> None:
    configured = audit_from_env({"DROPSYNC_AUDIT_CRON": "15 2 * * 0", "DROPSYNC_AUDIT_SAMPLE": "0.25"})
    schedule = audits.fixity_audit_schedule(configured)
    assert schedule.cron_schedule == "15 2 * * 0" and schedule.job_name == audits.AUDIT_JOB
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("drops", ["seq-a", "seq-b"])
        when = datetime(2026, 11, 29, 2, 15, tzinfo=UTC)
        requests = list(schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when)))
    assert sorted(r.tags[audits.PARTITION_TAG] for r in requests) == ["seq-a", "seq-b"]
    assert {r.run_config["ops"]["fixity_checks"]["config"]["sample"] for r in requests} == {0.25}
    assert len({r.run_key for r in requests}) == 2
    assert audits.fixity_audit_schedule(audit_from_env({})).cron_schedule == DEFAULT_AUDIT_CRON


def test_a_malformed_audit_setting_names_its_variable() -> None:
    for name, value in (("DROPSYNC_AUDIT_CRON", "nightly"), ("DROPSYNC_AUDIT_SAMPLE", "2"), ("DROPSYNC_AUDIT_ARCHIVES", "maybe")):
        with pytest.raises(ConfigError, match=name):
            audit_from_env({name: value})
