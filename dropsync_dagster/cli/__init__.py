"""`dropsync`: the steward's command line. Exit codes: 0 synced, 1 gated, 2 config, 3 refused/failed."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from dropsync_dagster.core.archive.generations import list_generations
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, load_config
from dropsync_dagster.core.archive.gpg import rewrap_key
from dropsync_dagster.core.drops.discovery import DropFolder, key_of, resolve_drop
from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError, without_class_paths
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.labkey.planning import plan_drop
from dropsync_dagster.cli.status import lineage, register, reset, status
from dropsync_dagster.cli.console import print_plan, shown
from dropsync_dagster.core.plan.report import stopped
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.cli.sync import sync_now
from dropsync_dagster.cli.restore import restore
from dropsync_dagster.cli.verify import verify
from dropsync_dagster.cli.reconcile import reconcile
from dropsync_dagster.cli.report import report



def plan_for(settings: Settings, drop: str) -> tuple[DropFolder, Plan]:
    """Resolve a drop path or key and plan it (read-only), asking LabKey as the job's resource does:
    credentials from LABKEY_API_KEY (or ~/.netrc)."""
    folder = resolve_drop(settings, drop)
    return folder, plan_drop(folder, load_config(folder.path / CONFIG_NAME), settings, LabKeyResource().client)


@click.group()
def cli() -> None:
    """Sync drop folders into a verified, encrypted, catalogued repository."""


@cli.command()
@click.argument("drop")
@click.option("--json", "as_json", is_flag=True, help="Print the plan document as JSON.")
def plan(drop: str, as_json: bool) -> None:
    """Show what syncing DROP (a folder or partition key) would do; changes nothing."""
    _, result = plan_for(Settings.from_env(), drop)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_plan(result)
    sys.exit(1 if stopped(result) else 0)


@cli.command()
@click.argument("drop")
@click.option("--do-it", is_flag=True, help="Copy, record and move; without it, only the plan is shown.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--ignore-readiness", is_flag=True,
              help="Sync even without the drop's sentinel or quiet period (recorded in its status).")
def sync(drop: str, do_it: bool, yes: bool, ignore_readiness: bool) -> None:
    """Sync DROP through the Dagster job, in this process, recorded on the instance."""
    settings = Settings.from_env()
    folder, planned = plan_for(settings, drop)
    print_plan(planned)
    if not do_it:
        sys.exit(1 if stopped(planned) else 0)
    if not yes and not click.confirm(shown(f"Sync {folder.key} ({folder.path})?"), default=False):
        raise click.exceptions.Abort()
    sys.exit(sync_now(settings, folder, planned, ignore_readiness=ignore_readiness))


@cli.group()
def keys() -> None:
    """Archive keys: re-wrap them to new owners without touching the archives."""


@keys.command()
@click.argument("drop")
@click.option("--to", "recipients", multiple=True, required=True, help="Recipient (repeat, or comma-separate).")
def rewrap(drop: str, recipients: tuple[str, ...]) -> None:
    """Re-wrap every archive key of DROP (folder or partition key) to the --to recipients."""
    settings = Settings.from_env()
    key = key_of(settings, drop)
    policy = GpgResource().policy(settings)  # the same environment the assets read
    names = [r.strip() for item in recipients for r in item.split(",") if r.strip()]
    generations = list_generations(policy.archive_dir, key)
    if not generations:
        raise ConfigError(f"{key}: no archive generations in {policy.archive_dir}")
    for gen in generations:
        fingerprints = rewrap_key(Path(gen.key_path), names, policy.gnupghome)
        click.echo(f"{gen.key_path}: wrapped to {', '.join(fingerprints)}")


@cli.command()
def demo() -> None:
    """Build a demo drop under ./.demo, sync it through Dagster and verify the outcome."""
    from dropsync_dagster.cli.demo import main as run_demo

    sys.exit(run_demo())


for command in (status, reset, lineage, register, verify, restore, reconcile, report):
    cli.add_command(command)


# Most specific first: a ConfigError is also a DropsyncError.
_EXITS = (
    (ConfigError, "configuration error", 2),
    (RefusedError, "refused", 3),
    (DropsyncError, "failed", 3),
    (OSError, "failed", 3),
)


def main() -> None:
    """Entry point: one line on stderr and a documented exit code for every failure, known or not:
    a crash is exit 3 with its message, never a traceback and never exit 1 (the "held" code)."""
    # Retry warnings (LabKey backoff) would otherwise reach stderr through logging's last resort;
    # the final error line already says how many attempts were made.
    logging.getLogger("dropsync_dagster").addHandler(logging.NullHandler())
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 3)
    except click.ClickException as exc:  # usage errors: one line too, exit 2
        _fail(f"dropsync: {exc.format_message()} (see dropsync --help)", 2)
    except (DropsyncError, OSError) as exc:
        label, code = next((label, code) for kind, label, code in _EXITS if isinstance(exc, kind))
        _fail(f"dropsync: {label}: {exc}", code)
    except KeyboardInterrupt:
        _fail("dropsync: interrupted", 3)
    except Exception as exc:  # the last resort: whatever it was, the run failed (exit 3)
        _fail(f"dropsync: failed: unexpected {type(exc).__name__}: {exc}", 3)


def _fail(line: str, code: int) -> None:
    """Exit with `code` after one line on stderr (control characters made visible, no class path)."""
    click.echo(shown(without_class_paths(line)), err=True)
    sys.exit(code)

if __name__ == "__main__":
    main()
