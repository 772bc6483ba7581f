"""The `labkey_records` step: write each presence key's row once, then prove every row is there.

Rows are written for copied files only, from the frozen plan. A result naming this plan is saved
before the first write and again at the end, failed or not (naming the rows that landed). When
the step runs again for the same plan (a retry or re-execution after a failed or unanswered
insert), planned creates are looked up again first, so rows that did land are updated, not
inserted twice; a new run re-plans, and its presence check does the same. Updates that would
change nothing are not sent.

Writes are idempotent within one attempt too: an insert batch that failed after it was sent (a
5xx, a dropped connection, a timeout: the server may have committed it) is never resent blindly;
the batch's presence keys are read again and only the rows still missing are inserted. The
run's claim is re-checked (`guard`) right before every batch is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.plan.gates import COPY_DONE, move_gate
from dropsync_dagster.core.labkey.columns import normalize_field, row_value
from dropsync_dagster.core.labkey.planning import WritebackTable, writeback_groups
from dropsync_dagster.core.labkey.transport import UnconfirmedWrite
from dropsync_dagster.core.model import Plan, PlanEntry, Reason, WriteAction
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, FileRecord, LabKeyResult
from dropsync_dagster.core.testhooks import hook
from dropsync_dagster.core.labkey.writeback import (
    AUTO_TARGET,
    RowBuilder,
    aggregator_key,
    holds_target,
    same_value,
    wants_checksum,
    writeback_configured,
)

Groups = dict[str, list[PlanEntry]]
Rows = list[tuple[list[PlanEntry], dict[str, Any]]]
Guard = Callable[[], None]
_DONE = {"update": "updated", "insert": "inserted"}


def not_configured(plan: Plan, why: str) -> LabKeyResult:
    """The result of a drop that writes no rows."""
    return LabKeyResult(drop=plan.drop, plan_id=plan.plan_id, configured=False,
                        why=why, complete=True)


def write_records(plan: Plan, checksums: ChecksumsResult, copies: CopiesResult, table: WritebackTable,
                  on_progress: Callable[[LabKeyResult], None], previous: LabKeyResult | None = None,
                  guard: Guard | None = None) -> LabKeyResult:
    """Update existing rows (by key) and insert new ones for every copied file; returns row ids.

    `previous`: this step's last result; when it is for the same plan, an earlier attempt may have
    written rows since planning, so planned creates are looked up again first. `guard` re-checks
    the run's claim right before each batch is sent."""
    started = time.monotonic()
    result = LabKeyResult(drop=plan.drop, plan_id=plan.plan_id, configured=True,
                          table=table.info.label, key_column=table.key)

    def not_copied(entry: PlanEntry) -> Reason | None:  # the copy-level gates only
        return move_gate(entry, checksums.files.get(entry.relpath), copies.files.get(entry.relpath))

    updates = _copied(plan, WriteAction.UPDATE, not_copied, result)
    creates = _copied(plan, WriteAction.CREATE, not_copied, result)
    md5s = _md5s(plan, checksums, [e for g in (*updates.values(), *creates.values()) for e in g])
    existing = {k: (g[0].labkey_row or {}) for k, g in updates.items()}
    if creates and previous is not None and previous.plan_id == plan.plan_id:
        _look_again(table, creates, updates, existing, result)
    builder = RowBuilder.of(plan.config, plan.created_at)
    changed: list[tuple[list[PlanEntry], dict[str, Any]]] = []
    for key, members in updates.items():
        stored = existing[key]
        row = builder.group_row(members, md5s, stored.get("fields"))
        if all(same_value(stored.get("fields", {}).get(k), v) for k, v in row.items()):
            _record(result, members, "unchanged", stored["key"])
        else:
            changed.append((members, {str(stored["key_column"]): stored["key"], **row}))
    inserts = [(members, builder.group_row(members, md5s)) for members in creates.values()]
    on_progress(result)  # before the first write: a later attempt of this plan knows to look again
    try:
        _write(table, "update", changed, result, guard)
        _write(table, "insert", inserts, result, guard)
        result.complete = True
    finally:  # also after a failure: the rows that landed are named in the result
        result.seconds = time.monotonic() - started
        on_progress(result)
    return result


def _look_again(table: WritebackTable, creates: Groups, updates: Groups, existing: dict[str, dict[str, Any]],
                result: LabKeyResult) -> None:
    """Planned creates whose row landed since planning become updates of it (two rows: held)."""
    for key, rows in table.lookup(list(creates)).items():
        if len(rows) > 1:
            _hold(result, creates.pop(key), Reason.DUPLICATE_PRESENCE_KEY)
        elif rows:
            found = table.existing(rows[0])
            if found["key"] is None:
                _hold(result, creates.pop(key), Reason.WRITEBACK_SKIPPED)
            else:
                updates[key], existing[key] = creates.pop(key), found


def _copied(plan: Plan, action: WriteAction, not_copied: Callable[[PlanEntry], Reason | None],
            result: LabKeyResult) -> Groups:
    """Groups of `action` restricted to copied files; the others are held, with the copy's reason."""
    groups: Groups = {}
    for key, members in writeback_groups(plan, action).items():
        copied = []
        for entry in members:
            reason = not_copied(entry)
            if reason is None:
                copied.append(entry)
            else:
                _hold(result, [entry], reason)
        if copied:
            groups[key] = copied
    return groups


def _md5s(plan: Plan, checksums: ChecksumsResult, entries: list[PlanEntry]) -> dict[str, str | None]:
    """MD5 per file (the copy's MD5: its bytes were verified equal to the source's)."""
    md5s = {e.relpath: checksums.files[e.relpath].digests.md5 for e in entries if e.relpath in checksums.files}
    if wants_checksum(plan.config):
        missing = [e.relpath for e in entries if not md5s.get(e.relpath)]
        if missing:
            raise DropsyncError(f"{plan.drop}: {missing[0]}: no MD5 computed for the Checksum field "
                                f"({len(missing)} files); re-run drop_checksums")
    return md5s


def _hold(result: LabKeyResult, members: list[PlanEntry], reason: Reason) -> None:
    for entry in members:
        result.files[entry.relpath] = FileRecord(action="held", reason=reason)


def _record(result: LabKeyResult, members: list[PlanEntry], action: str, row_id: Any) -> None:
    for entry in members:
        result.files[entry.relpath] = FileRecord(action=action, row_id=row_id)
    setattr(result, action, getattr(result, action) + 1)  # the inserted/updated/unchanged counters


def _write(table: WritebackTable, command: str, rows: Rows, result: LabKeyResult, guard: Guard | None) -> None:
    """Send rows in batches, each right after the claim is re-checked; inserts never twice."""
    size = table.client.write_batch
    for start in range(0, len(rows), size):
        batch = rows[start:start + size]
        if command == "insert":
            _insert_once(table, batch, result, guard)
        else:
            _send(table, command, batch, result, guard)


def _send(table: WritebackTable, command: str, batch: Rows, result: LabKeyResult, guard: Guard | None) -> None:
    """One batch, one request; the returned keys are recorded as it lands."""
    if guard is not None:
        guard()
    send = table.client.update_rows if command == "update" else table.client.insert_rows
    stored = send(table.schema, table.table, [row for _, row in batch])
    for (members, _), row in zip(batch, stored):
        _record(result, members, _DONE[command], row_value(row, table.key) if table.key else None)
    hook("labkey_written", drop=result.drop, command=command, rows=len(batch))


def _insert_once(table: WritebackTable, batch: Rows, result: LabKeyResult, guard: Guard | None) -> None:
    """Insert a batch; after an unconfirmed attempt, insert only the rows presence cannot find."""
    attempts = table.client.retry.attempts
    for attempt in range(1, attempts + 1):
        try:
            _send(table, "insert", batch, result, guard)
            return
        except UnconfirmedWrite:
            if attempt == attempts:
                raise
            time.sleep(table.client.retry.delay(attempt))
            batch = _still_missing(table, batch, result)
            if not batch:
                return


def _still_missing(table: WritebackTable, batch: Rows, result: LabKeyResult) -> Rows:
    """Read the batch's presence keys again: rows that landed are recorded, two rows are held."""
    found = table.lookup([members[0].presence_key or "" for members, _ in batch])
    missing = []
    for members, row in batch:
        landed = found.get(members[0].presence_key or "", [])
        if len(landed) > 1:
            _hold(result, members, Reason.DUPLICATE_PRESENCE_KEY)
        elif landed:
            _record(result, members, "inserted", table.existing(landed[0])["key"])
        else:
            missing.append((members, row))
    return missing


def rows_problems(plan: Plan, copies: CopiesResult, result: LabKeyResult, table: WritebackTable) -> list[str]:
    """Re-select the written rows: every copied file has a recorded row that names its target."""
    entries = {e.relpath: e for e in plan.entries}
    recorded = result.row_ids()
    problems = []
    for rel, copy in copies.files.items():
        entry = entries.get(rel)
        if (copy.outcome in COPY_DONE and entry is not None and rel not in recorded
                and entry.write_action in (WriteAction.UPDATE, WriteAction.CREATE)):
            held = result.files.get(rel)
            problems.append(f"{rel}: copied but no LabKey row recorded ({held.reason if held else 'not written'})")
    stored = table.rows_by_key(list(dict.fromkeys(recorded.values())))
    checked = _target_fields(plan, table)
    for rel, row_id in recorded.items():
        entry, row = entries[rel], stored.get(str(row_id))
        if row is None:
            problems.append(f"{rel}: row {table.key}={row_id} is not in {table.info.label}")
        elif checked and not any(holds_target(row_value(row, table.columns[k]), entry.target or "") for k in checked):
            problems.append(f"{rel}: row {table.key}={row_id} does not name its target {entry.target}")
        elif not checked and not same_value(row_value(row, table.columns[table.rule.field]), entry.presence_key):
            problems.append(f"{rel}: row {table.key}={row_id} has {table.rule.field} != '{entry.presence_key}'")
    return problems


def _target_fields(plan: Plan, table: WritebackTable) -> list[str]:
    """Field keys that hold target paths: the file_list field, the aggregator, the auto path field."""
    keys = [k for k in plan.config.fields if normalize_field(k) == AUTO_TARGET]
    if table.rule.by_target:
        keys.append(table.rule.field)
    aggregator = aggregator_key(plan.config)
    if aggregator is not None and aggregator in table.columns:
        keys.append(aggregator)
    return list(dict.fromkeys(keys))



def recorded_files(plan: Plan, result: LabKeyResult | None) -> set[str] | None:
    """The move gate's `recorded`: None when the drop writes no rows; else the files whose row a
    complete write-back of *this* plan confirmed (a stale or partial result confirms nothing)."""
    if not writeback_configured(plan.config):
        return None
    if result is None or not result.complete or result.plan_id != plan.plan_id:
        return set()
    return result.recorded()
