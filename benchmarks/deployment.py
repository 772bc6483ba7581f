"""A throwaway production deployment for the benchmarks: a fresh database on the machine's
Postgres (127.0.0.1:5432, trust auth), DAGSTER_HOME from deploy/dagster.yaml, and the same
`dagster-daemon run` / `dagster-webserver` processes the tests start (fixtures/dagster_procs.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from benchmarks.datasets import machine, remove_tree
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.dagster_procs import BIN, DagsterHome, DagsterProcs
from dropsync_dagster_tests.fixtures.postgres import PgServer


@contextmanager
def deployment(work: Path, drop_env: dict[str, str], max_concurrent_runs: int) -> Iterator[tuple[DagsterProcs, DagsterHome]]:
    """A database and a DAGSTER_HOME for `drop_env`; processes and database are gone afterwards."""
    server = PgServer("127.0.0.1", 5432, "postgres")
    db = f"dropsync_bench_{uuid.uuid4().hex[:8]}"
    try:
        conn = server.connect()
    except psycopg2.OperationalError as exc:
        raise SystemExit(f"the deployment benchmarks need Postgres on 127.0.0.1:5432: {exc}") from exc
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    patch = pytest.MonkeyPatch()
    procs = DagsterProcs(work, server, db, patch)
    try:
        home = procs.home(drop_env, max_concurrent_runs=max_concurrent_runs)
        home.set_pool_limits()
        yield procs, home
    finally:
        procs.stop_all()
        patch.undo()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.close()


def tiny_drops(base: Path, count: int, prefix: str = "run") -> list[Drop]:
    """`count` ready drops under `base/drops`, each one small FASTQ file of its own library
    (no LabKey; archives follow DROPSYNC_GPG_RECIPIENTS, unset here: off)."""
    drops = []
    for i in range(count):
        drop = make_drop(base, f"{prefix}_{i:03d}")
        drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
        drop.add_file(fastq_relpath(lib=f"ABC_DEF{chr(65 + i // 676)}{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}"))
        drop.mark_ready()
        drops.append(drop)
    return drops


def register(home: DagsterHome, root: Path) -> None:
    """`dropsync register ROOT` on the deployment."""
    subprocess.run([str(BIN / "dropsync"), "register", str(root)], env=home.env, check=True, capture_output=True)


def finished_runs(instance: dg.DagsterInstance, tags: dict[str, str]) -> list[dg.RunRecord]:
    """Run records with these tags, once none of them is queued or running."""
    records = list(instance.get_run_records(dg.RunsFilter(tags=tags)))
    return records if records and all(r.dagster_run.is_finished for r in records) else []


def cli_sync(home: DagsterHome, drop: Drop) -> None:
    """`dropsync sync DROP --do-it --yes` (an in-process run on the deployment's instance)."""
    done = subprocess.run([str(BIN / "dropsync"), "sync", str(drop.path), "--do-it", "--yes"],
                          env={**home.env, **drop.env()}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dropsync sync {drop.path} exited {done.returncode}: {done.stderr.strip()[-500:]}")


def load_average() -> str:
    """The 1-minute load average, for the record."""
    return f"{os.getloadavg()[0]:.1f}"


def begin(title: str, detail: str, work: Path) -> Path:
    """Empty the work folder and print the header line: what, when, where, how loaded."""
    work = work.resolve()
    remove_tree(work)
    print(f"# {title}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}; {detail}; "
          f"load average {load_average()}\n")
    return work
