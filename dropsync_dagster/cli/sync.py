"""`dropsync sync`: the plan; with --do-it, the drop's job run in-process, summarised, an exit code.

SIGTERM stops the run cleanly: Dagster delivers it to the run as an interrupt (as Ctrl-C), the
step at work abandons its current file and removes its temporaries, the claim is released
without counting a failure, and the command exits 3 saying it stopped.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from dropsync_dagster.cli.console import console, print_labkey_summary, print_plan, print_table, progress_bars, shown
from dropsync_dagster.cli.plan import plan_for
from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.drops.registry import register_at
from dropsync_dagster.core.status.runs import record_run_failure, require_ready
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.plan.report import GATE_REASONS, stopped
from dropsync_dagster.deployment import Deployment, deployment_from_env

if TYPE_CHECKING:
    from dropsync_dagster.cli.runner import RunOutcome


@click.command()
@click.argument("drop")
@click.option("--do-it", is_flag=True, help="Copy, record and move; without it, only the plan is shown.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--ignore-readiness", is_flag=True,
              help="Sync even without the drop's sentinel or quiet period (recorded in its status).")
def sync(drop: str, do_it: bool, yes: bool, ignore_readiness: bool) -> None:
    """Sync DROP through the Dagster job, in this process, recorded on the instance."""
    deployment = deployment_from_env()
    folder, planned = plan_for(deployment, drop)
    print_plan(planned)
    if not do_it:
        sys.exit(1 if stopped(planned) else 0)
    if not yes and not click.confirm(shown(f"Sync {folder.key} ({folder.path})?"), default=False):
        raise click.exceptions.Abort()
    sys.exit(sync_now(deployment, folder, planned, ignore_readiness=ignore_readiness))


def sync_now(deployment: Deployment, folder: DropFolder, plan: Plan, ignore_readiness: bool = False) -> int:
    """Run one drop to completion; 0 all synced, 1 some file held at a gate; raises on failure."""
    from dropsync_dagster.cli import runner  # Dagster, only for the runs themselves
    from dropsync_dagster.runs import IGNORE_READINESS, LAUNCHED_BY

    settings = deployment.settings
    # Refuse before the run starts, so a missing DROPSYNC_ALLOWED_ROOTS is a config error (exit 2).
    settings.check_writable(plan.repository_folder, "repository_folder")
    settings.check_writable(plan.processed_folder, "processed_folder")
    # Readiness is checked again by the run's first step; here it is one line before any work.
    require_ready(folder.key, folder.path, settings, ignore_readiness, "dropsync sync --ignore-readiness")
    store, max_failures = deployment.status_store(), deployment.limits.max_failures  # as the assets see them
    inst = runner.instance()
    runner.register(inst, [folder.key])
    register_at(store, folder)  # the run finds the drop's folder in its status document
    reaped = runner.reap_dead_cli_run(inst, store, folder.key, str(folder.path), max_failures)
    if reaped:
        console.print(reaped)
    tags = {LAUNCHED_BY: "cli", **({IGNORE_READINESS: "true"} if ignore_readiness else {})}
    with progress_bars():
        outcome = runner.run_drop(inst, folder.key, tags=tags)
    if not outcome.success:
        _after_failure(store, folder, outcome, max_failures)
    assert outcome.results is not None  # a run that succeeded returns its results
    copies, originals, recorded = outcome.results.copies, outcome.results.originals, outcome.results.labkey
    print_table("Copy summary", [{"file": r, "target": c.target, "result": c.outcome} for r, c in copies.files.items()], "result")
    print_table(
        "Archive/move summary",
        [{"file": r, "processed": m.processed or "", "result": m.label} for r, m in originals.files.items()],
        "result",
    )
    if recorded.configured:
        print_labkey_summary(recorded)
    held = [r for r, m in originals.files.items() if m.reason in GATE_REASONS]
    console.print(f"run {outcome.run_id}: {len(originals.files) - len(held)} synced, {len(held)} held back")
    return 1 if held else 0


def _after_failure(store: StatusStore, folder: DropFolder, outcome: RunOutcome, max_failures: int) -> None:
    """The failure path of an in-process run (the daemon's run-failure sensor skips them): a run
    stopped or refused on a configuration error releases its claim uncounted, a failed one is
    counted; always raises."""
    stopped = outcome.interrupted
    try:
        if stopped or outcome.config_error:
            doc = store.get(folder.key)
            if doc is not None and doc.owner == outcome.run_id and doc.status == "processing":
                store.release(folder.key, outcome.run_id)
        else:
            record_run_failure(store, folder.key, str(folder.path), outcome.run_id,
                               outcome.error or "run failed", max_failures)
    except DropsyncError as exc:  # the store is down: the claim stays until the run is known finished
        raise RefusedError(f"{folder.key}: run {outcome.run_id} {'stopped' if stopped else 'failed'}: "
                           f"{outcome.error}; the status store could not record it ({exc})") from exc
    if outcome.config_error:
        raise ConfigError(f"{folder.key}: run {outcome.run_id}: {outcome.error}")
    if stopped:
        raise RefusedError(f"{folder.key}: run {outcome.run_id} stopped (SIGTERM or Ctrl-C); the current file was "
                           "abandoned and its temporaries removed; run `dropsync sync` again to finish")
    raise DropsyncError(f"{folder.key}: run {outcome.run_id} failed: {outcome.error}")
