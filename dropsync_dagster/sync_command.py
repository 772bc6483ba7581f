"""`dropsync sync --do-it`: register, run the drop's job in-process, summarise, pick the exit code."""

from __future__ import annotations

from dropsync_dagster import runner
from dropsync_dagster.console import console, print_labkey_summary, print_table, progress_bars
from dropsync_dagster.core.discovery import DropFolder
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.registry import remember
from dropsync_dagster.core.runs import record_run_failure
from dropsync_dagster.core.report import GATE_REASONS
from dropsync_dagster.core.results import CopiesResult, LabKeyResult, OriginalsResult, ResultStore
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.status import StatusResource


def sync_now(settings: Settings, folder: DropFolder, plan: Plan) -> int:
    """Run one drop to completion; 0 all synced, 1 some file held at a gate; raises on failure."""
    # Refuse before the run starts, so a missing DROPSYNC_ALLOWED_ROOTS is a config error (exit 2).
    settings.check_writable(plan.repository_folder, "repository_folder")
    settings.check_writable(plan.processed_folder, "processed_folder")
    remember(settings, folder)
    status = StatusResource()  # the environment's store, as the assets see it
    store, (max_failures, _) = status.store(settings), status.limits()
    inst = runner.instance()
    runner.register(inst, [folder.key])
    store.register(folder.key, str(folder.path))
    reaped = runner.reap_dead_cli_run(inst, store, folder.key, str(folder.path), max_failures)
    if reaped:
        console.print(reaped)
    with progress_bars():
        outcome = runner.run_drop(inst, folder.key, tags={runner.LAUNCHED_BY: "cli"})
    if not outcome.success:
        # In-process runs are counted here; the daemon's run-failure sensor skips them.
        record_run_failure(store, folder.key, str(folder.path), outcome.run_id, outcome.error or "run failed", max_failures)
        raise DropsyncError(f"{folder.key}: run {outcome.run_id} failed: {outcome.error}")
    results = ResultStore(settings.state_dir)
    copies = results.load(folder.key, "copies", CopiesResult)
    originals = results.load(folder.key, "originals", OriginalsResult)
    print_table("Copy summary", [{"file": r, "target": c.target, "result": c.outcome} for r, c in copies.files.items()], "result")
    print_table(
        "Archive/move summary",
        [{"file": r, "processed": m.processed or "", "result": m.label} for r, m in originals.files.items()],
        "result",
    )
    recorded = results.load_optional(folder.key, "labkey", LabKeyResult)
    if recorded is not None and recorded.configured:
        print_labkey_summary(recorded)
    held = [r for r, m in originals.files.items() if m.reason in GATE_REASONS]
    console.print(f"run {outcome.run_id}: {len(originals.files) - len(held)} synced, {len(held)} held back")
    return 1 if held else 0
