"""`dropsync reconcile`: repository, lineage, LabKey, archive and drops compared; exit 1 on findings."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from dropsync_dagster.core.stewardship.reconcile import reconcile as find_inconsistencies
from dropsync_dagster.deployment import deployment_from_env


@click.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only drops changed and repository files modified since DATE (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def reconcile(since: datetime | None, as_json: bool) -> None:
    """Compare repository, lineage, LabKey, archive and drops; one line per inconsistency, exit 1 if any."""
    deployment = deployment_from_env()
    settings = deployment.settings
    since_utc = since.replace(tzinfo=timezone.utc) if since is not None else None
    found = find_inconsistencies(deployment.status_store(), settings.state_dir,
                                 deployment.labkey.client, since_utc)
    if as_json:
        click.echo(found.model_dump_json(indent=1))
    else:
        for finding in found.findings:
            click.echo(finding.line())
        for skipped in found.skipped:
            click.echo(f"skipped\t{skipped}", err=True)
    sys.exit(0 if found.clean else 1)
