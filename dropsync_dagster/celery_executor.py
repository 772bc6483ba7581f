"""dagster-celery's executor with one rule added: a step goes to the Celery queue named after its
pool (`gpg`, `labkey`), every other step to `dagster`, so the hosts that hold the keyring or may
reach LabKey are the ones that run those steps, and a queue's worker count caps its load.

Queue names get the prefix DROPSYNC_CELERY_QUEUE_PREFIX (default empty), so two deployments, or
two test runs, can share one broker. A step tagged `dagster-celery/queue` keeps its own queue.
The executor's config is dagster-celery's own (broker, backend, include, config_source,
retries), so deploy/celery.yaml serves the job and `dagster-celery worker start -y` alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, celery_executor
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from dropsync_dagster.deployment import deployment_from_env

DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue name


def queue_for(pool: str | None, tags: dict[str, str] | None, prefix: str) -> str:
    """The queue of one step: its explicit queue tag, else its pool's queue, else the default."""
    if tags and DAGSTER_CELERY_QUEUE_TAG in tags:
        return tags[DAGSTER_CELERY_QUEUE_TAG]
    return f"{prefix}{pool or DEFAULT_QUEUE}"


class PoolQueueCeleryExecutor(CeleryExecutor):
    """CeleryExecutor whose steps are routed by `queue_for`."""

    def __init__(self, base: CeleryExecutor, prefix: str) -> None:
        super().__init__(retries=base.retries, broker=base.broker, backend=base.backend,
                         include=base.include, config_source=dict(vars(base.config_source)))
        self.prefix = prefix

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[dg.DagsterEvent]:
        """dagster-celery's execution loop, submitting each step to its pool's queue."""
        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=self._submit)

    def _submit(self, app: Any, plan_context: Any, step: Any, queue: str, priority: int, known_state: Any) -> Any:
        # dagster-celery's own submission (pinned by pyproject: dagster-celery 0.29.x).
        from dagster_celery.executor import _submit_task

        return _submit_task(app, plan_context, step, queue_for(step.pool, step.tags, self.prefix), priority, known_state)


@dg.executor(
    name="celery_by_pool",
    config_schema=CELERY_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def celery_by_pool_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """dagster-celery's `celery_executor`, steps routed to the queue of their pool."""
    base: CeleryExecutor = celery_executor.executor_creation_fn(init_context)  # type: ignore[assignment,misc]
    return PoolQueueCeleryExecutor(base, deployment_from_env().celery_queue_prefix)
