"""`dropsync plan`: what syncing a drop would do, read-only (no Dagster, no instance)."""

from __future__ import annotations

import sys
from typing import NamedTuple

import click

from dropsync_dagster.cli.console import print_plan
from dropsync_dagster.core.drops.discovery import DropFolder, resolve_drop
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.report import stopped
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, load_config
from dropsync_dagster.deployment import Deployment, deployment_from_env


class PlannedDrop(NamedTuple):
    """A drop resolved from the command line and its plan."""

    folder: DropFolder
    plan: Plan


def plan_for(deployment: Deployment, drop: str) -> PlannedDrop:
    """Resolve a drop path or key and plan it (read-only), asking LabKey as the job's resource does:
    credentials from LABKEY_API_KEY (or ~/.netrc)."""
    from dropsync_dagster.core.labkey.planning import plan_drop

    folder = resolve_drop(deployment.settings, drop)
    config = load_config(folder.path / CONFIG_NAME)
    return PlannedDrop(folder, plan_drop(folder, config, deployment.settings, deployment.labkey.client))


@click.command()
@click.argument("drop")
@click.option("--json", "as_json", is_flag=True, help="Print the plan document as JSON.")
def plan(drop: str, as_json: bool) -> None:
    """Show what syncing DROP (a folder or partition key) would do; changes nothing."""
    planned = plan_for(deployment_from_env(), drop).plan
    if as_json:
        click.echo(planned.model_dump_json(indent=2))
    else:
        print_plan(planned)
    sys.exit(1 if stopped(planned) else 0)
