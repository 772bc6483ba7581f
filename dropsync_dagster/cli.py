"""`dropsync`: the steward's command line. Exit codes: 0 synced, 1 gated, 2 config, 3 refused/failed."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from dropsync_dagster.core.config import CONFIG_NAME, load_config
from dropsync_dagster.core.discovery import resolve_drop
from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan import make_plan
from dropsync_dagster.core.report import copy_plan_rows, move_plan_rows, plan_rows, stopped
from dropsync_dagster.core.settings import Settings

console = Console(highlight=False)


def plan_for(settings: Settings, drop: str) -> Plan:
    """Resolve a drop path or key and plan it (read-only)."""
    folder = resolve_drop(settings, drop)
    return make_plan(folder, load_config(folder.path / CONFIG_NAME), settings)


def print_table(title: str, rows: list[dict[str, str]], red_when: str) -> None:
    """A rich table; rows whose `red_when` column starts with would_skip/skipped (or is set) are red."""
    table = Table(title=title, show_lines=False)
    for column in rows[0] if rows else ["file"]:
        table.add_column(column, overflow="fold")
    for row in rows:
        flag = row.get(red_when, "")
        red = flag.startswith(("would_skip", "skipped")) or (red_when == "reason" and flag not in ("", "already_synced"))
        table.add_row(*row.values(), style="red" if red else None)
    console.print(table)


def print_plan(plan: Plan) -> None:
    """The old tool's three tables."""
    print_table(f"Plan: {plan.drop}", plan_rows(plan), "reason")
    print_table("Copy plan", copy_plan_rows(plan), "action")
    print_table("Move plan", move_plan_rows(plan), "action")


@click.group()
def cli() -> None:
    """Sync drop folders into a verified, encrypted, catalogued repository."""


@cli.command()
@click.argument("drop")
@click.option("--json", "as_json", is_flag=True, help="Print the plan document as JSON.")
def plan(drop: str, as_json: bool) -> None:
    """Show what syncing DROP (a folder or partition key) would do; changes nothing."""
    result = plan_for(Settings.from_env(), drop)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_plan(result)
    sys.exit(1 if stopped(result) else 0)


def main() -> None:
    """Entry point: one line on stderr and a documented exit code for every known failure."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(3)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ConfigError as exc:
        click.echo(f"dropsync: configuration error: {exc}", err=True)
        sys.exit(2)
    except RefusedError as exc:
        click.echo(f"dropsync: refused: {exc}", err=True)
        sys.exit(3)
    except DropsyncError as exc:
        click.echo(f"dropsync: failed: {exc}", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
