"""`dropsync status | reset | lineage | register`: the status store and partitions from the shell."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dropsync_dagster import runner
from dropsync_dagster.cli.console import console, print_table
from dropsync_dagster.core.drops.discovery import key_of, list_drops
from dropsync_dagster.core.errors import ConfigError, RefusedError
from dropsync_dagster.core.settings import DropRoot, Settings
from dropsync_dagster.core.status.store import DropDoc, DropState
from dropsync_dagster.resources.status import StatusResource


def _store(settings: Settings):
    return StatusResource().store(settings)


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
    settings = Settings.from_env()
    store = _store(settings)
    if drop is None:
        docs = store.list()
    else:
        one = store.get(key_of(settings, drop))
        if one is None:
            raise ConfigError(f"{drop}: no status document (not registered yet)")
        docs = [one]
    if as_json:
        click.echo(json.dumps([d.body() for d in docs], indent=1, default=str))
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
            "last_error": (d.last_error or "").splitlines()[0][:80] if d.last_error else "",
        }
        for d in docs
    ]
    print_table("Drops", rows, "status")


@click.command()
@click.argument("drop")
@click.option("--force", is_flag=True,
              help="Also release a claim whose Dagster run is finished (left behind when its failure "
                   "could not be recorded, e.g. during a status-store outage).")
def reset(drop: str, force: bool) -> None:
    """Make a failed DROP pending again, with its failure count cleared."""
    settings = Settings.from_env()
    store, key = _store(settings), key_of(settings, drop)
    doc = store.get(key)
    if force and doc is not None and doc.status == DropState.PROCESSING and doc.owner:
        inst = runner.instance()
        run = inst.get_run_by_id(doc.owner)
        if run is None:
            raise RefusedError(f"{key}: claimed by run {doc.owner} (worker {doc.worker_id}), which this Dagster "
                               "instance does not know; cannot tell whether it is finished")
        if not runner.run_finished(inst, doc.owner):
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
    settings = Settings.from_env()
    doc = _store(settings).find_file(str(Path(path).resolve()) if Path(path).exists() else path)
    if doc is None:
        raise ConfigError(f"{path}: no file document records this path")
    click.echo(doc.model_dump_json(indent=1, by_alias=True, exclude_none=True))


@click.command()
@click.argument("roots", nargs=-1, required=True)
def register(roots: tuple[str, ...]) -> None:
    """Register every drop under each ROOT as a partition and a pending drop (idempotent)."""
    settings = Settings.from_env()
    found = []
    for root in roots:
        real = Path(root).resolve()
        if not real.is_dir():
            raise ConfigError(f"{root}: not a folder")
        name = next((r.name for r in settings.drop_roots if r.path == real), real.name)
        found += list_drops((DropRoot(name, real),))
    added = runner.register(runner.instance(), [d.key for d in found])
    new_docs = _store(settings).register_many({d.key: str(d.path) for d in found})
    console.print(f"{len(found)} drops: {len(added)} new partitions, {new_docs} new status documents")
