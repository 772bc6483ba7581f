"""How every run of this code location executes, whatever launched it (sensor, job page, the
asset graph's Materialize, a backfill, a retry): in one process, with the drop runs' retry strategy.

The asset graph and its backfills launch Dagster's implicit `__ASSET_JOB`, which takes the
Definitions' executor but no job tags: Dagster 1.13 has no default run tags for it, and the
instance's `run_retries` retries a tagless run FROM_FAILURE. A drop run must be retried from its
plan (the failure path releases the drop; only `drop_checksums` claims it again), so the executor
gives its run `dagster/retry_strategy: ALL_STEPS` before the first step, unless the run has one.
The retry daemon copies the failed run's tags to the retry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # Dagster's executor plumbing has no public names
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.execution.retries import RetryMode
    from dagster._core.execution.step_dependency_config import StepDependencyConfig

RETRY_STRATEGY_TAG = "dagster/retry_strategy"
RUN_TAGS: Mapping[str, str] = {RETRY_STRATEGY_TAG: "ALL_STEPS"}


class DropRunExecutor(dg.Executor):
    """Dagster's in-process executor, giving its run the drop runs' default tags first."""

    def __init__(self, inner: dg.Executor) -> None:
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        """The in-process executor's retry mode (op retries), unchanged."""
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        """Unchanged from the in-process executor."""
        return self._inner.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[dg.DagsterEvent]:
        """Tag the run, then run every step in this process."""
        missing = {k: v for k, v in RUN_TAGS.items() if k not in plan_context.dagster_run.tags}
        if missing:
            plan_context.instance.add_run_tags(plan_context.run_id, missing)
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(
    name="in_process",
    config_schema=dg.in_process_executor.config_schema,
)
def drop_run_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """The in-process executor with the drop runs' retry strategy."""
    return DropRunExecutor(dg.in_process_executor.executor_creation_fn(init_context))
