"""`dropsync status | reset | lineage | register`: the status store and partitions from the shell."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dropsync_dagster.cli.console import console, print_table
from dropsync_dagster.core.drops.discovery import key_of, list_drops
from dropsync_dagster.core.errors import ConfigError, RefusedError
from dropsync_dagster.core.settings import DropRoot
from dropsync_dagster.core.status.store import DropDoc, DropState
from dropsync_dagster.deployment import deployment_from_env
from dropsync_dagster.core.stewardship.quarantine import quarantined


def _age(doc: DropDoc) -> str:
    if doc.updated_at is None:
        return ""
    seconds = (datetime.now(timezone.utc) - doc.updated_at).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@click.command()
@click.argument("drop", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
def status(drop: str | None, as_json: bool) -> None:
    """Drops with their status, counts, age and owner (or one DROP)."""
    deployment = deployment_from_env()
    settings, store = deployment.settings, deployment.status_store()
    if drop is None:
        docs = store.list()
    else:
        one = store.get(key_of(settings, drop))
        if one is None:
            raise ConfigError(f"{drop}: no status document (not registered yet)")
        docs = [one]
    held_aside = {d.id: quarantined(settings.quarantine_dir, d.id) for d in docs}
    if as_json:
        click.echo(json.dumps([{**d.body(), "quarantined": [{"path": str(q.path), **q.note.model_dump(mode="json")}
                                                            for q in held_aside[d.id]]} for d in docs],
                              indent=1, default=str))
        return
    if not docs:
        console.print("no drops registered (dropsync register ROOT…, or let the sensor find them)")
        return
    rows = [
        {
            "drop": d.id,
            "status": d.status + (f" ({d.problem})" if d.problem else ""),
            "counts": " ".join(f"{k}={v}" for k, v in (d.counts or {}).items()),
            "age": _age(d),
            "owner": d.owner or "",
            "failures": str(d.failure_count),
            "quarantined": str(len(held_aside[d.id])),
            "last_error": (d.last_error or "").splitlines()[0][:80] if d.last_error else "",
        }
        for d in docs
    ]
    print_table("Drops", rows, "status")
    aside = [{"drop": key, "file": q.note.relpath, "state": f"quarantined ({q.note.reason})",
              "expected": " ".join(f"{k} {v}" for k, v in q.note.expected.items()),
              "actual": " ".join(f"{k} {v}" for k, v in q.note.actual.items() if k == "md5"), "where": str(q.path)}
             for key, items in held_aside.items() for q in items]
    if aside:
        print_table("Quarantined files (back in the drop by themselves once a corrected sidecar arrives)", aside, "state")


@click.command()
@click.argument("drop")
@click.option("--force", is_flag=True,
              help="Also release a claim whose Dagster run is finished (left behind when its failure "
                   "could not be recorded, e.g. during a status-store outage).")
def reset(drop: str, force: bool) -> None:
    """Make a failed DROP pending again, with its failure count cleared."""
    deployment = deployment_from_env()
    store, key = deployment.status_store(), key_of(deployment.settings, drop)
    doc = store.get(key)
    if force and doc is not None and doc.status == DropState.PROCESSING and doc.owner:
        from dropsync_dagster.cli import runner  # Dagster, only to ask the instance about the run
        from dropsync_dagster.runs import run_finished

        inst = runner.instance()
        run = inst.get_run_by_id(doc.owner)
        if run is None:
            raise RefusedError(f"{key}: claimed by run {doc.owner} (worker {doc.worker_id}), which this Dagster "
                               "instance does not know; cannot tell whether it is finished")
        if not run_finished(inst, doc.owner):
            raise RefusedError(f"{key}: claimed by run {doc.owner} (worker {doc.worker_id}), which is "
                               f"{run.status.value.lower()}; stop it or wait for it first")
        store.release(key, doc.owner)
        console.print(f"{key}: released the claim of run {doc.owner} (worker {doc.worker_id}, "
                      f"run {run.status.value.lower()})")
    doc = store.reset(key)
    console.print(f"{doc.id}: {doc.status}, failure_count {doc.failure_count}")


@click.command()
@click.argument("path")
def lineage(path: str) -> None:
    """The lineage document of a file, by its repository, drop or processed path."""
    doc = deployment_from_env().status_store().find_file(str(Path(path).resolve()) if Path(path).exists() else path)
    if doc is None:
        raise ConfigError(f"{path}: no file document records this path")
    click.echo(doc.model_dump_json(indent=1, by_alias=True, exclude_none=True))


@click.command()
@click.argument("roots", nargs=-1, required=True)
def register(roots: tuple[str, ...]) -> None:
    """Register every drop under each ROOT as a partition and a pending drop (idempotent)."""
    from dropsync_dagster.cli import runner  # Dagster, for the partitions

    deployment = deployment_from_env()
    settings = deployment.settings
    found = []
    for root in roots:
        real = Path(root).resolve()
        if not real.is_dir():
            raise ConfigError(f"{root}: not a folder")
        name = next((r.name for r in settings.drop_roots if r.path == real), real.name)
        found += list_drops((DropRoot(name, real),))
    added = runner.register(runner.instance(), [d.key for d in found])
    new_docs = deployment.status_store().register_many({d.key: str(d.path) for d in found})
    console.print(f"{len(found)} drops: {len(added)} new partitions, {new_docs} new status documents")
