"""Alert sensors: a failed run, a drop reaching `failed`, held or quarantined files, and a failed
ERROR-severity asset check (an audit) each send one message by email and webhook.

Each sensor keeps an outbox in its cursor (core.stewardship.alerts): a message is sent once per
channel; a channel that fails is logged and tried again on the next tick, at most MAX_ATTEMPTS
times. New failed runs are read from the instance's run status changes and new check failures
from each check's execution history, after the position kept in the cursor (a run_failure_sensor
keeps its own cursor, which cannot carry the retry state); the status store's failed and held
drops are compared with those already alerted. A first tick only marks where history ends.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import groupby
from typing import NamedTuple

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord, AssetCheckExecutionRecordStatus

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.stewardship.alerts import Alert, Outbox, deliver, enqueue, forget_except
from dropsync_dagster.core.stewardship.messages import check_failed, run_failed, status_alerts
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.stewardship import StewardshipResource
from dropsync_dagster.resources.storage import StorageResource

INTERVAL = 30  # seconds between alert ticks: a message is at most this late
EVENTS_PER_TICK = 100
PARTITION_TAG = "dagster/partition"
HISTORY_START = ""  # `after` when the log was empty on the first tick: everything after is new


def send_round(context: dg.SensorEvaluationContext, outbox: Outbox, alerts: Sequence[Alert],
               stewardship: StewardshipResource) -> dg.SensorResult:
    """Queue `alerts`, deliver what is pending, log every failure; the outbox becomes the cursor."""
    on = stewardship.channels()
    if not on and alerts:
        context.log.warning("no alert channel configured (DROPSYNC_SMTP_HOST, DROPSYNC_ALERT_WEBHOOK_URL): "
                            + "; ".join(a.subject for a in alerts))
    done = deliver(enqueue(outbox, alerts, on), on)
    for error in done.errors:
        context.log.error(f"alert not delivered, retrying next tick: {error}")
    for key in done.given_up:
        context.log.error(f"alert {key} given up after repeated delivery failures (see the errors above)")
    said = [f"sent {len(done.sent)}"] if done.sent else []
    said += [f"{len(done.outbox.pending)} to retry: {done.errors[0]}"] if done.outbox.pending and done.errors else []
    return dg.SensorResult(cursor=done.outbox.model_dump_json(), skip_reason="; ".join(said) or "nothing to alert")


def _outbox(context: dg.SensorEvaluationContext) -> Outbox:
    return Outbox.model_validate_json(context.cursor) if context.cursor else Outbox()


def failed_runs(instance: dg.DagsterInstance, after: str | None) -> tuple[list[Alert], str]:
    """Alerts for the runs that failed after cursor `after`, and the new cursor."""
    if after is None:
        latest = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1)
        return [], latest.cursor if latest.records else HISTORY_START
    found = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=EVENTS_PER_TICK,
                                              cursor=after or None, ascending=True)
    alerts = []
    for record in found.records:
        entry = record.event_log_entry
        run = instance.get_run_by_id(entry.run_id)
        message = (entry.dagster_event.message if entry.dagster_event else None) or entry.user_message or "run failed"
        alerts.append(run_failed(entry.run_id, entry.job_name or (run.job_name if run else "?"),
                                 run.tags.get(PARTITION_TAG) if run else None, message))
    return alerts, found.cursor if found.records else after


class CheckScan(NamedTuple):
    """New failed checks, the execution id up to which every record is final, and the ids alerted beyond it."""

    alerts: list[Alert]
    after: str
    alerted_ids: list[int]


def failed_checks(instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], after: str | None,
                  alerted: Collection[int]) -> CheckScan:
    """Alerts for ERROR-severity check evaluations that failed after execution id `after` (one per
    run and check). An execution record is written `planned` when its run starts and turns
    `failed` in place later, so the position stops below the first record still planned by a live
    run; failures above it already alerted are remembered instead of sent again."""
    storage, start = instance.event_log_storage, None if after is None else int(after or 0)
    newest, waiting, failed = start or 0, [], []
    live: dict[str, bool] = {}
    for key in keys:
        cursor = None
        while True:  # newest first, page by page, down to `start`
            page = storage.get_asset_check_execution_history(key, limit=EVENTS_PER_TICK, cursor=cursor)
            newest = max([newest, *(r.id for r in page)])
            fresh = [r for r in page if start is not None and r.id > start]
            waiting += [r.id for r in fresh if r.status == AssetCheckExecutionRecordStatus.PLANNED and _live(instance, r.run_id, live)]
            failed += [r for r in fresh if r.status == AssetCheckExecutionRecordStatus.FAILED and r.id not in alerted and _error(r)]
            if len(fresh) < EVENTS_PER_TICK:
                break
            cursor = page[-1].id
    position = min(waiting) - 1 if waiting else newest
    alerts = []
    ordered = sorted(failed, key=lambda r: (r.run_id, r.key.to_user_string(), r.id))
    for (run_id, _), group in groupby(ordered, key=lambda r: (r.run_id, r.key.to_user_string())):
        records = list(group)
        key = records[0].key
        alerts.append(check_failed(run_id, key.asset_key.to_user_string(), key.name,
                                   [(r.partition, _why(r)) for r in records], records[-1].id))
    remembered = sorted(i for i in {*alerted, *(r.id for r in failed)} if i > position)
    return CheckScan(alerts, str(position), remembered)


def _live(instance: dg.DagsterInstance, run_id: str, known: dict[str, bool]) -> bool:
    """True while the run may still evaluate its planned checks (a finished run never will)."""
    if run_id not in known:
        run = instance.get_run_by_id(run_id)
        known[run_id] = run is not None and not run.is_finished
    return known[run_id]


def _evaluation(record: AssetCheckExecutionRecord) -> dg.AssetCheckEvaluation | None:
    data = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def _error(record: AssetCheckExecutionRecord) -> bool:
    evaluation = _evaluation(record)
    return evaluation is not None and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR


def _why(record: AssetCheckExecutionRecord) -> str:
    evaluation = _evaluation(record)
    if evaluation is None:
        return ""
    problems = evaluation.metadata.get("problems")
    return evaluation.description or (str(problems.value) if problems is not None else "")


@dg.sensor(minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_alerts(context: dg.SensorEvaluationContext, stewardship: StewardshipResource) -> dg.SensorResult:
    """One message per failed run of this instance (any job), by email and webhook."""
    outbox = _outbox(context)
    alerts, after = failed_runs(context.instance, outbox.after)
    # Dedup is by the log position here: delivered keys need not be remembered.
    return send_round(context, forget_except(outbox, ()).model_copy(update={"after": after}), alerts, stewardship)


@dg.sensor(minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.RUNNING)
def check_failure_alerts(context: dg.SensorEvaluationContext, stewardship: StewardshipResource) -> dg.SensorResult:
    """One message per run and asset check that failed with ERROR severity (e.g. a fixity audit)."""
    outbox = _outbox(context)
    keys = list(context.repository_def.asset_graph.asset_check_keys) if context.repository_def else []
    scan = failed_checks(context.instance, keys, outbox.after, outbox.alerted_ids)
    outbox = forget_except(outbox, ()).model_copy(update={"after": scan.after, "alerted_ids": scan.alerted_ids})
    return send_round(context, outbox, scan.alerts, stewardship)


@dg.sensor(minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.RUNNING)
def drop_state_alerts(context: dg.SensorEvaluationContext, storage: StorageResource, status: StatusResource,
                      stewardship: StewardshipResource) -> dg.SensorResult:
    """One message per drop reaching `failed` and per set of held or quarantined files of a drop."""
    outbox = _outbox(context)
    try:
        found = status_alerts(status.store(storage.settings()), outbox.marks)
    except DropsyncError as exc:  # an unreachable store: nothing is known, nothing is forgotten
        context.log.warning(f"status store: {exc}")
        return send_round(context, outbox, [], stewardship)
    # A state that ended (a reset, a re-transferred file) is forgotten: if it comes back, it is new.
    outbox = forget_except(outbox, [*found.current, *outbox.pending]).model_copy(update={"marks": found.marks})
    return send_round(context, outbox, found.alerts, stewardship)


alert_sensors = [run_failure_alerts, check_failure_alerts, drop_state_alerts]
