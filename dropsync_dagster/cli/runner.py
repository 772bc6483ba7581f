"""`dropsync sync`'s runs: the drop job in this process, on the instance `make dev` serves."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from dagster._utils.error import SerializableErrorInfo

from dropsync_dagster.core import errors
from dropsync_dagster.core.errors import ConfigError, without_class_paths
from dropsync_dagster.core.results import CopiesResult, LabKeyResult, OriginalsResult
from dropsync_dagster.core.status.runs import holder_died_here, record_run_failure
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.definitions import defs
from dropsync_dagster.partitions import drops
from dropsync_dagster.runs import LAUNCHED_BY

# The CLI prints its own summary; the run's full log stays in the instance's event log (the UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
QUICK_START_INSTANCE = "telemetry:\n  enabled: false\n"
# Our exceptions' names (and their subclasses elsewhere): their messages are already one line for people.
# Dagster's wrappers around an error raised in a step, or in the IO manager loading its inputs or writing its result.
DAGSTER_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterExecutionLoadInputError",
                    "DagsterExecutionHandleOutputError")
OUR_ERRORS = frozenset({*(n for n, v in vars(errors).items() if isinstance(v, type)), "UnconfirmedWrite", "NotOwnerError"})


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its id, and the first failure's one-line reason when it failed."""

    run_id: str
    success: bool
    error: str | None = None
    config_error: bool = False  # failed on a configuration error: nothing was done
    interrupted: bool = False  # stopped by SIGTERM or SIGINT (Dagster interrupts the step at work)
    results: RunResults | None = None  # what the run's steps returned, when it succeeded


@dataclass(frozen=True)
class RunResults:
    """The results a succeeded drop run's steps returned, as the CLI summarises them."""

    copies: CopiesResult
    originals: OriginalsResult
    labkey: LabKeyResult


def instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME (default `./.dagster_home`, as the Makefile sets it)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", os.path.abspath(".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    # Two CLI processes on a fresh home would both create its SQLite storages and stamp their
    # schema (alembic: "two version heads"): creation is one process at a time.
    with _locked(home / ".dropsync-instance.lock"):
        config = home / "dagster.yaml"
        if not config.exists():  # SQLite storage in DAGSTER_HOME, as `make dev` uses it
            config.write_text(QUICK_START_INSTANCE)
        return dg.DagsterInstance.get()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def register(inst: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Add partitions that are not there yet (idempotent); returns the keys added."""
    existing = set(inst.get_dynamic_partitions(drops.name))
    new = [k for k in dict.fromkeys(keys) if k not in existing]
    if new:
        inst.add_dynamic_partitions(drops.name, new)
    return new


def run_drop(inst: dg.DagsterInstance, key: str, tags: dict[str, str] | None = None) -> RunOutcome:
    """Execute the `sync_drop` job for one partition in this process; the run shows in the UI."""
    job = defs.resolve_job_def("sync_drop")
    result = job.execute_in_process(
        partition_key=key, instance=inst, raise_on_error=False, run_config=QUIET_LOGS, tags=tags or {}
    )
    if result.success:
        return RunOutcome(result.run_id, True, results=RunResults(
            result.output_for_node("repository_copies"), result.output_for_node("archived_originals"),
            result.output_for_node("labkey_records")))
    found = _root_error(result)
    interrupted = found is not None and found.error.cls_name == "DagsterExecutionInterruptedError"
    return RunOutcome(result.run_id, False, first_failure(result), failed_on_config(result), interrupted)


def reap_dead_cli_run(inst: dg.DagsterInstance, store: StatusStore, drop: str, path: str, max_failures: int) -> str | None:
    """A `dropsync sync` killed on this host leaves its claim behind: mark its run failed and
    count the failure, so a re-run can claim the drop at once instead of waiting out the lease."""
    doc = store.get(drop)
    if doc is None or doc.owner is None or not holder_died_here(doc):
        return None
    run = inst.get_run_by_id(doc.owner)
    if run is None or run.tags.get(LAUNCHED_BY) != "cli" or run.is_finished:
        return None
    message = f"process {doc.worker_id} died while running {drop}"
    inst.report_run_failed(run, message)
    return record_run_failure(store, drop, path, doc.owner, message, max_failures)


class StepFailure(NamedTuple):
    """The first failed step of a run and its error, past Dagster's own wrapper."""

    step: str
    error: SerializableErrorInfo


def _root_error(result: dg.ExecuteInProcessResult) -> StepFailure | None:
    """The first failed step and its error; None if no step failed."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in DAGSTER_WRAPPERS:
                error = error.cause
            return StepFailure(event.step_key, error)
    return None


def _one_line(error: SerializableErrorInfo) -> str:
    """The error's first line for people: our errors without their class, others with the bare
    class name, never a module path."""
    text = error.message.strip()
    head, sep, rest = text.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        text = rest if error.cls_name in OUR_ERRORS else f"{error.cls_name}: {rest}"
    elif text.rsplit(".", 1)[-1] == error.cls_name:  # a bare class path, no message
        text = str(error.cls_name)
    return without_class_paths(text.splitlines()[0] if text else str(error.cls_name))


def _failed_checks(result: dg.ExecuteInProcessResult, step: str) -> str:
    """The blocking checks that failed in `step`, by name, with the first problem each listed."""
    failed = [
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and event.step_key == step
        and not event.asset_check_evaluation_data.passed
    ]
    return "; ".join(f"blocking check {c.check_name} failed: {_first_problem(c.metadata)}" for c in failed)


def _first_problem(metadata: Mapping[str, dg.MetadataValue]) -> str:
    """The first of the problems `assets.metadata.check_result` lists, and how many more there are."""
    listed = metadata.get("problems")
    first = str(listed.value).splitlines()[0].removeprefix("- ") if listed is not None else "no problem listed"
    count = metadata.get("problem_count")
    more = int(count.value) - 1 if count is not None else 0  # type: ignore[arg-type]
    return first if more < 1 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"


def first_failure(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step and the first line of its error, in words (a failed blocking check
    by its name and first problem)."""
    found = _root_error(result)
    if found is None:
        return "run failed"
    step, error = found
    checks = _failed_checks(result, step) if error.cls_name == "DagsterAssetCheckFailedError" else ""
    return f"step {step} failed: {checks or _one_line(error)}"


def failed_on_config(result: dg.ExecuteInProcessResult) -> bool:
    """True when the run failed on a configuration error (nothing done; not a counted failure)."""
    found = _root_error(result)
    return found is not None and found.error.cls_name == ConfigError.__name__
