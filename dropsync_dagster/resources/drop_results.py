"""The IO manager of the drop assets: each asset's result as JSON per drop in the state folder
(the plan as JSON Lines), handed to the next assets as typed values of the run's plan.

The files live on the state folder every process of a run shares, so it serves the in-process,
multiprocess and Celery executors alike; the format, validation and the once-per-process parse
are core's (core/result_files.py, core/plan/frozen.py). The run's plan is the one its claim
names (a re-execution keeps its plan), else the drop's current plan (the run's first step claims
with it); a result of another plan is refused with one line. An input annotated `X | None` is
None when its asset has not run for the run's plan.
"""

from __future__ import annotations

from typing import Any, get_args

import dagster as dg
from pydantic import BaseModel

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.frozen import MANIFEST, current_plan_id, read_plan, write_plan
from dropsync_dagster.core.result_files import ResultFiles
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.status.runs import claimed_plan_id
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource


DROP_RESULTS = "drop_results"  # the resource key of this IO manager, on every drop asset


def root_run_id(run: dg.DagsterRun) -> str:
    """The run that owns a drop's claim: re-executions and retries of one run keep its claim."""
    return run.root_run_id or run.run_id


class DropResultsIOManager(dg.ConfigurableIOManager):
    """Drop asset results in `<state>/drops/<drop>/`, bound to the plan of the run that reads them."""

    storage: StorageResource
    status: StatusResource

    def handle_output(self, context: dg.OutputContext, obj: BaseModel) -> None:
        """Write the asset's result (the plan: frozen under its id and made current)."""
        drop, asset = _drop(context), context.asset_key.to_user_string()
        state_dir = self.storage.settings().state_dir
        if isinstance(obj, Plan):
            context.add_output_metadata({"plan_json": dg.MetadataValue.path(str(write_plan(state_dir, obj)))})
            return
        path = ResultFiles(state_dir, drop).save(asset, obj)
        context.add_output_metadata({"result_json": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> BaseModel | None:
        """The upstream asset's result for the run's plan, validated; parsed once per process."""
        drop, asset = _drop(context), context.asset_key.to_user_string()
        settings = self.storage.settings()
        plan_id = self._run_plan_id(context, settings, drop)
        if asset == MANIFEST:
            return read_plan(settings.state_dir, drop, plan_id)
        model, optional = _annotated(context.dagster_type.typing_type)
        files = ResultFiles(settings.state_dir, drop)
        return files.load_if_current(asset, model, plan_id) if optional else files.load(asset, model, plan_id)

    def _run_plan_id(self, context: dg.InputContext, settings: Settings, drop: str) -> str:
        """The plan the run's claim names (a retry or re-execution keeps it), else the drop's current plan."""
        claimed = claimed_plan_id(self.status.store(settings), drop, root_run_id(context.step_context.dagster_run))
        return claimed or current_plan_id(settings.state_dir, drop)


def _annotated(hint: Any) -> tuple[type[BaseModel], bool]:
    """The result model an input is annotated with, and whether it is optional (`X | None`)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    return (args[0], True) if args else (hint, False)


def _drop(context: dg.InputContext | dg.OutputContext) -> str:
    """The drop partition the result belongs to."""
    if not context.has_asset_partitions:
        raise DropsyncError(f"{context.asset_key.to_user_string()}: drop results are kept per drop partition; "
                            "materialise one drop partition")
    return context.asset_partition_key
