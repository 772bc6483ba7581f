"""The production deployment with Dagster's own processes: `dagster-daemon run` and
`dagster-webserver` on deploy/dagster.yaml over a real Postgres, no in-process shortcut."""

from __future__ import annotations

import dagster as dg

from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.dagster_procs import LOCATION, wait_until


def drop_in(base, name: str, files: int = 2, ready: bool = True) -> Drop:
    """A drop without LabKey: `files` tiny FASTQ files, the first with a correct .md5 sidecar."""
    drop = make_drop(base, name)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    for read in range(1, files + 1):
        drop.add_file(fastq_relpath(read=read), md5="correct" if read == 1 else None)
    if ready:
        drop.mark_ready()
    return drop


def gpg_env(gpg_keys) -> dict[str, str]:
    """Archives on: the session keyring, one recipient."""
    return {"GNUPGHOME": gpg_keys.home, "DROPSYNC_GPG_RECIPIENTS": gpg_keys.recipients[0]}


def partitions(home) -> list[str]:
    with home.instance() as instance:
        return instance.get_dynamic_partitions("drops")


def runs_of(home, key: str) -> list[dg.DagsterRun]:
    with home.instance() as instance:
        return list(instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key})))


def test_daemon_syncs_a_drop_that_appears(dagster_procs, tmp_path, gpg_keys) -> None:
    old = drop_in(tmp_path, "run_2019-01-01")  # historical: registered, never run by the sensor
    home = dagster_procs.home(old.env(**gpg_env(gpg_keys)))
    assert "gpg" in home.set_pool_limits("3", "1")
    daemon = dagster_procs.daemon(home)
    wait_until(lambda: old.key in partitions(home), 90, "the first tick to register the old drop", daemon)

    new = drop_in(tmp_path, "run_2026-11-20", files=3, ready=False)
    new.mark_ready()  # the transfer is complete: the sensor's next tick requests a run
    run = wait_until(lambda: [r for r in runs_of(home, new.key) if r.is_finished], 120,
                     f"a finished run for {new.key}", daemon)[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS, daemon.tail()
    assert run.tags["dagster/sensor_name"] == "drop_sensor"
    assert runs_of(home, old.key) == []

    # Every file synced: in the repository, original moved, archive written, status document synced.
    for read in (1, 2, 3):
        rel = fastq_relpath(read=read)
        assert (new.processed / rel).exists() and not (new.path / rel).exists()
    assert len(list(new.repository.rglob("*.fastq.gz"))) == 3
    state = tmp_path / "state"
    assert len(list((state / "archive").glob(f"{new.key}.g1.tar.gpg"))) == 1
    doc = SqliteStatusStore(state / DEFAULT_FILENAME).get(new.key)
    # (A sensor tick that falls between a move's link and unlink may queue one more, empty run.)
    assert doc is not None and doc.status == "synced" and doc.owner in {r.run_id for r in runs_of(home, new.key)}

    with home.instance() as instance:
        # The run went through the queue (the concurrency block), not straight to a launcher.
        types = {e.dagster_event_type for e in instance.all_logs(run.run_id)}
        assert {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING} <= types
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.event_log_storage.get_concurrency_info("gpg").slot_count == 1
        assert instance.event_log_storage.get_concurrency_info("labkey").slot_count == 3


def test_webserver_serves_the_code_location(dagster_procs, tmp_path) -> None:
    drop = drop_in(tmp_path, "run_a")
    home = dagster_procs.home(drop.env())
    web = dagster_procs.webserver(home)
    data = web.graphql(
        """query($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
             ... on Repository { jobs { name } sensors { name minIntervalSeconds } } } }""",
        {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}},
    )
    repo = data["repositoryOrError"]
    assert "sync_drop" in {j["name"] for j in repo["jobs"]}
    assert {"name": "drop_sensor", "minIntervalSeconds": 1} in repo["sensors"]
    assert web.graphql("{ version }")["version"] == dg.__version__
