"""`dropsync restore`: a drop back from its encrypted archive, proven intact before it appears."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dropsync_dagster.cli.console import shown
from dropsync_dagster.core.drops.discovery import key_of
from dropsync_dagster.core.errors import IntegrityError
from dropsync_dagster.core.stewardship.restore import restore_drop
from dropsync_dagster.deployment import deployment_from_env


@click.command()
@click.argument("drop")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder to restore into.")
@click.option("--files", "patterns", multiple=True, metavar="GLOB", help="Only members matching GLOB (repeatable).")
@click.option("--generation", type=click.IntRange(min=1), default=None, help="Restore as of generation N (default: latest).")
def restore(drop: str, to: str, patterns: tuple[str, ...], generation: int | None) -> None:
    """Decrypt, merge and verify DROP's archive generations into --to; refuses on any damage."""
    deployment = deployment_from_env()
    key = key_of(deployment.settings, drop)
    try:
        done = restore_drop(deployment.archive, key, Path(to), patterns=patterns, generation=generation)
    except IntegrityError as exc:  # exit 1: the archive is damaged; nothing was left under a final name
        click.echo(shown(f"dropsync: integrity error: {exc}"), err=True)
        sys.exit(1)
    click.echo(f"{key}: restored {len(done.files)} files into {done.to} from generations "
               f"{','.join(map(str, sorted(set(done.files.values()))))}")
