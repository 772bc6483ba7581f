"""`dropsync`: the steward's command line. Exit codes: 0 synced, 1 gated, 2 config, 3 refused/failed.

Commands are registered by name and imported when run (COMMANDS), so `dropsync --help` imports
no command and `dropsync plan` never imports Dagster: only `sync`, `reset --force`, `register`
and `demo` do.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import NamedTuple

import click
from click.utils import make_default_short_help

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError, without_class_paths
from dropsync_dagster.deployment import hook_commands_from_env

class Registered(NamedTuple):
    """A command known by name: where it lives ("module:attribute" under dropsync_dagster.cli) and
    the summary `dropsync --help` shows for it (test_cli_main checks it is the command's own)."""

    target: str
    summary: str


# Modules import Dagster only inside the commands that run jobs (sync, reset --force, register, demo).
COMMANDS = {
    "demo": Registered("demo:demo", "Build a demo drop under ./.demo, sync it through Dagster and verify the outcome."),
    "keys": Registered("keys:keys", "Archive keys: re-wrap them to new owners without touching the archives."),
    "lineage": Registered("status:lineage", "The lineage document of a file, by its repository, drop or processed path."),
    "plan": Registered("plan:plan", "Show what syncing DROP (a folder or partition key) would do; changes nothing."),
    "reconcile": Registered("reconcile:reconcile", "Compare repository, lineage, LabKey, archive and drops; one line per inconsistency, exit 1 if any."),
    "register": Registered("status:register", "Register every drop under each ROOT as a partition and a pending drop (idempotent)."),
    "report": Registered("report:report", "Per month: drops synced and failed, files and bytes synced, files held."),
    "reset": Registered("status:reset", "Make a failed DROP pending again, with its failure count cleared."),
    "restore": Registered("restore:restore", "Decrypt, merge and verify DROP's archive generations into --to; refuses on any damage."),
    "status": Registered("status:status", "Drops with their status, counts, age and owner (or one DROP)."),
    "sync": Registered("sync:sync", "Sync DROP through the Dagster job, in this process, recorded on the instance."),
    "verify": Registered("verify:verify", "Re-read repository copies from disk and compare them with their lineage digests."),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported from COMMANDS when one is run, not for --help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted (as click lists them)."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command `cmd_name`, its module imported now; None for an unknown name."""
        registered = COMMANDS.get(cmd_name)
        if registered is None:
            return None
        module, attribute = registered.target.split(":")
        return getattr(importlib.import_module(f"dropsync_dagster.cli.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of --help from COMMANDS, without importing a command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))  # as click.Group.format_commands
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(COMMANDS[name].summary, limit)) for name in names])


@click.group(cls=LazyGroup)
def cli() -> None:
    """Sync drop folders into a verified, encrypted, catalogued repository."""


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
        _arm_test_hooks()
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


def _arm_test_hooks() -> None:
    """DROPSYNC_TEST_HOOKS, for the fault suite's subprocesses (nothing is installed when unset)."""
    testhooks.install_commands(hook_commands_from_env(os.environ))


def _fail(line: str, code: int) -> None:
    """Exit with `code` after one line on stderr (control characters made visible, no class path)."""
    from dropsync_dagster.cli.console import shown

    click.echo(shown(without_class_paths(line)), err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
