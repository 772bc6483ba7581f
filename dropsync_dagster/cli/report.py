"""`dropsync report`: drops, files and bytes synced, held and failed, per month, as CSV or JSON."""

from __future__ import annotations

import json
from datetime import datetime

import click

from dropsync_dagster.core.stewardship.report import as_csv, period_report
from dropsync_dagster.deployment import deployment_from_env

DAY = click.DateTime(["%Y-%m-%d"])


@click.command()
@click.option("--since", type=DAY, help="First day counted (UTC, YYYY-MM-DD).")
@click.option("--until", type=DAY, help="Last day counted (UTC, YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="Output format.")
def report(since: datetime | None, until: datetime | None, fmt: str) -> None:
    """Per month: drops synced and failed, files and bytes synced, files held."""
    rows = period_report(deployment_from_env().status_store(), since and since.date(), until and until.date())
    if fmt == "json":
        click.echo(json.dumps([r.model_dump() for r in rows], indent=1))
    else:
        click.echo(as_csv(rows), nl=False)
