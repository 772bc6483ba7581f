"""The drop job on dagster-celery over RabbitMQ: launched through the webserver's GraphQL API,
run by the daemon, every step executed by one of this test's Celery workers, gpg and LabKey
steps by the workers bound to their queues."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import psutil
import yaml
from dagster_graphql import DagsterGraphQLClient

from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.dagster_procs import CELERY_YAML, LOCATION, Proc, wait_until
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER

STEPS = {"drop_manifest": "dagster", "drop_checksums": "dagster", "encrypted_archive": "gpg",
         "repository_copies": "dagster", "labkey_records": "labkey", "archived_originals": "dagster"}


def family(proc: Proc) -> set[int]:
    """The pids of a started process and everything it spawned (the celery worker itself)."""
    root = psutil.Process(proc.popen.pid)
    return {root.pid, *(p.pid for p in root.children(recursive=True))}


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[str, int]]:
    """step key -> (Celery worker hostname that ran it, pid of its STEP_START event)."""
    hosts: dict[str, str] = {}
    pids: dict[str, int] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in (event.engine_event_data.metadata or {}):
            hosts[record.step_key] = str(event.engine_event_data.metadata["Celery worker"].value)
        if event.event_type == dg.DagsterEventType.STEP_START:
            pids[record.step_key] = event.pid
    return {key: (hosts.get(key, "?"), pids.get(key, -1)) for key in pids}


def test_drop_job_runs_its_steps_in_celery_workers(celery_broker, dagster_procs, tmp_path, gpg_keys,
                                                   labkey_env, labkey_section: dict[str, Any]) -> None:
    # celery_broker first: its queues are deleted after dagster_procs has stopped the workers.
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey_section))
    for read in (1, 2):
        drop.add_file(fastq_relpath(read=read), md5="correct")
    drop.mark_ready()
    home = dagster_procs.home(drop.env(), extra_env={
        "GNUPGHOME": gpg_keys.home, "DROPSYNC_GPG_RECIPIENTS": gpg_keys.recipients[0],
        "LABKEY_API_KEY": LABKEY_API_KEY, "NETRC": os.environ["NETRC"],
        "DROPSYNC_CELERY_BROKER": celery_broker.url, "DROPSYNC_CELERY_QUEUE_PREFIX": celery_broker.prefix,
    })
    home.set_pool_limits()
    tag = celery_broker.prefix.strip("-")
    workers = {queue: dagster_procs.celery_worker(home, f"{queue}-{tag}", [celery_broker.queue(queue)])
               for queue in ("dagster", "gpg", "labkey")}
    daemon = dagster_procs.daemon(home)
    web = dagster_procs.webserver(home)
    instance = dagster_procs.enter(home.instance())
    wait_until(lambda: drop.key in instance.get_dynamic_partitions("drops"), 90,
               "the sensor's first tick to register the drop", daemon)

    client = DagsterGraphQLClient("127.0.0.1", port_number=web.port)
    run_id = client.submit_job_execution(
        "sync_drop_celery", repository_location_name=LOCATION, repository_name="__repository__",
        run_config=yaml.safe_load(CELERY_YAML.read_text()), tags={"dagster/partition": drop.key},
    )
    procs = [daemon, web, *workers.values()]
    run = wait_until(lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished and r, 240,
                     "the Celery run to finish", *procs, every=1)
    assert run.status == dg.DagsterRunStatus.SUCCESS, "\n".join(p.tail() for p in procs)

    # Every step ran in a worker of its queue: that worker's hostname, a pid of that worker.
    ran = step_workers(instance, run_id)
    assert set(ran) == set(STEPS)
    for step, queue in STEPS.items():
        host, pid = ran[step]
        assert host.startswith(f"{queue}-{tag}@"), (step, host)
        assert pid in family(workers[queue]), (step, pid)
    assert os.getpid() not in {pid for _, pid in ran.values()}

    # And the drop is synced.
    for read in (1, 2):
        assert (drop.processed / fastq_relpath(read=read)).exists()
    assert len(list(drop.repository.rglob("*.fastq.gz"))) == 2
    assert len(labkey_env.rows(LABKEY_CONTAINER, "exp", "data")) == 2
    assert (tmp_path / "state" / "archive" / f"{drop.key}.g1.tar.gpg").exists()
    doc = SqliteStatusStore(tmp_path / "state" / DEFAULT_FILENAME).get(drop.key)
    assert doc is not None and doc.status == "synced" and doc.owner == run_id
