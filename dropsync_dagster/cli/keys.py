"""`dropsync keys rewrap`: re-wrap a drop's archive keys to new owners, archives untouched."""

from __future__ import annotations

from pathlib import Path

import click

from dropsync_dagster.core.archive.generations import list_generations
from dropsync_dagster.core.archive.gpg import rewrap_key
from dropsync_dagster.core.drops.discovery import key_of
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.deployment import deployment_from_env


@click.group()
def keys() -> None:
    """Archive keys: re-wrap them to new owners without touching the archives."""


@keys.command()
@click.argument("drop")
@click.option("--to", "recipients", multiple=True, required=True, help="Recipient (repeat, or comma-separate).")
def rewrap(drop: str, recipients: tuple[str, ...]) -> None:
    """Re-wrap every archive key of DROP (folder or partition key) to the --to recipients."""
    deployment = deployment_from_env()
    key = key_of(deployment.settings, drop)
    policy = deployment.archive  # the same settings the assets get
    names = [r.strip() for item in recipients for r in item.split(",") if r.strip()]
    generations = list_generations(policy.archive_dir, key)
    if not generations:
        raise ConfigError(f"{key}: no archive generations in {policy.archive_dir}")
    for gen in generations:
        fingerprints = rewrap_key(Path(gen.key_path), names, policy.gnupghome)
        click.echo(f"{gen.key_path}: wrapped to {', '.join(fingerprints)}")
