"""`dropsync sync --do-it`: register, run the drop's job in-process, summarise, pick the exit code.

SIGTERM stops the run cleanly: Dagster delivers it to the run as an interrupt (as Ctrl-C), the
step at work abandons its current file and removes its temporaries, the claim is released
without counting a failure, and the command exits 3 saying it stopped.
"""

from __future__ import annotations

from dropsync_dagster import runner
from dropsync_dagster.cli.console import console, print_labkey_summary, print_table, progress_bars
from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.drops.registry import register_at
from dropsync_dagster.core.status.runs import record_run_failure, require_ready
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.core.plan.report import GATE_REASONS
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.status import StatusResource


def sync_now(settings: Settings, folder: DropFolder, plan: Plan, ignore_readiness: bool = False) -> int:
    """Run one drop to completion; 0 all synced, 1 some file held at a gate; raises on failure."""
    # Refuse before the run starts, so a missing DROPSYNC_ALLOWED_ROOTS is a config error (exit 2).
    settings.check_writable(plan.repository_folder, "repository_folder")
    settings.check_writable(plan.processed_folder, "processed_folder")
    # Readiness is checked again by the run's first step; here it is one line before any work.
    require_ready(folder.key, folder.path, settings, ignore_readiness, "dropsync sync --ignore-readiness")
    status = StatusResource()  # the environment's store, as the assets see it
    store, (max_failures, _) = status.store(settings), status.limits()
    inst = runner.instance()
    runner.register(inst, [folder.key])
    register_at(store, folder)  # the run finds the drop's folder in its status document
    reaped = runner.reap_dead_cli_run(inst, store, folder.key, str(folder.path), max_failures)
    if reaped:
        console.print(reaped)
    tags = {runner.LAUNCHED_BY: "cli", **({runner.IGNORE_READINESS: "true"} if ignore_readiness else {})}
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


def _after_failure(store: StatusStore, folder: DropFolder, outcome: runner.RunOutcome, max_failures: int) -> None:
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
