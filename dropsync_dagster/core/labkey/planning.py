"""LabKey in the plan: the write-back table, the batched presence check, planning with metadata
and presence, and the dry-run tables (per-row update diffs, planned creates).

Presence lookup, and why: one multi-value filter per batch of presence values — `containsoneof`
for `contains` (the default `file_list` check), `in` for `equal` — matched to the values locally
(see `labkey_presence.py`). Requests grow with batches, not files, and not with the table either
(a paginated scan of key + presence column would read all of `exp.data` for every drop).
Batches here are bigger than the client's default: LOOKUP_VALUES values or LOOKUP_BYTES of
form body (worst-case estimate), far below Tomcat's 2 MB maxPostSize, so 10,000 targets of
~100 characters are 5 selects. For target paths, when that takes more than one batch, the rows
naming the targets' common folder are read first (one `contains` pattern per row instead of
thousands) if they fit in fewer pages than there are batches; otherwise the batches are sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropsync_dagster.core.syncyml.schema import SyncConfig
from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.location import LabKeyConnection
from dropsync_dagster.core.labkey.columns import TableInfo, row_value
from dropsync_dagster.core.labkey.presence import PresenceMatch, multi_value, presence_batches, presence_operator
from dropsync_dagster.core.plan.matching import DropMetadata, MakeClient
from dropsync_dagster.core.model import Plan, PlanEntry, Reason, WriteAction
from dropsync_dagster.core.plan.planner import Presence, make_plan
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.plan.templating import render
from dropsync_dagster.core.labkey.writeback import (
    PENDING_CHECKSUM,
    PresenceRule,
    RowBuilder,
    aggregator_key,
    held_paths,
    holds_target,
    presence_rule,
    presence_value,
    same_value,
    writeback_configured,
)

if TYPE_CHECKING:
    from dropsync_dagster.core.labkey.connection import Filter, LabKeyClient

LOOKUP_VALUES = 2000
LOOKUP_BYTES = 1 << 20
KEY_LOOKUP_VALUES = 5000  # keys are short: re-selecting written rows by key needs fewer requests
WRITE_BATCH = 1000


def _filter(field: str, kind: str, value: str) -> Filter:
    """A select filter (the LabKey client is imported only once a drop talks to LabKey)."""
    from dropsync_dagster.core.labkey.connection import Filter

    return Filter(field, kind, value)


def writeback_connection(config: SyncConfig) -> LabKeyConnection:
    """The connection of the drop's `labkey:` section (host, container, schema, table)."""
    if config.labkey is None:
        raise ConfigError("the drop has no labkey section")
    return LabKeyConnection.from_section(config.labkey.model_dump(by_alias=True))


@dataclass(frozen=True)
class WritebackTable:
    """The write-back table of one drop: its columns resolved once, and how rows are found again."""

    client: LabKeyClient
    schema: str
    table: str
    info: TableInfo
    columns: dict[str, str]  # field key (fields and field_parameters) -> column name
    rule: PresenceRule

    @classmethod
    def open(cls, client: LabKeyClient, config: SyncConfig) -> "WritebackTable":
        """Fetch the table's columns; a field naming no column is a ConfigError listing the columns."""
        schema, table = client.connection.schema or "", client.connection.table or ""
        rule = presence_rule(config)
        info = client.table_info(schema, table)
        columns = info.resolve([*config.fields, *config.field_parameters])
        return cls(client, schema, table, info, columns, rule)

    @property
    def key(self) -> str | None:
        """The table's primary-key column (`metaData.id`)."""
        return self.info.key

    def lookup(self, values: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Existing rows per presence value. Target paths are matched as holds_target says, by
        looking up the paths each row holds (linear in rows, not rows x targets)."""
        column, wanted = self.columns[self.rule.field], sorted(set(self.columns.values()))
        if not self.rule.by_target:
            return self.client.find_rows(self.schema, self.table, column, values, self.rule.match, columns=wanted)
        found: dict[str, list[dict[str, Any]]] = {v: [] for v in values}

        def assign(rows: list[dict[str, Any]], allowed: set[str]) -> None:
            for row in rows:
                for path in dict.fromkeys(held_paths(row.get(column))):
                    if path in allowed:
                        found[path].append(row)

        batches = presence_batches(values, self.client.lookup_values, self.client.lookup_bytes)
        scanned = self._folder_rows(column, wanted, values, len(batches) - 1)
        if scanned is not None:
            assign(scanned, set(values))
            return found
        for batch in batches:
            rows = self.client.select_rows(self.schema, self.table, wanted, [
                _filter(column, presence_operator(PresenceMatch.CONTAINS), multi_value(batch))])
            assign(rows, set(batch))  # a row holding targets of two batches comes back twice
        return found

    def _folder_rows(self, column: str, wanted: list[str], targets: Sequence[str], pages: int) -> list[dict[str, Any]] | None:
        """Every row naming the targets' common folder, when that is at most `pages` pages (fewer
        requests than the batches, one cheap pattern per row); None when there are more."""
        folder = os.path.commonpath(targets) if pages > 0 else os.sep
        if folder == os.sep:
            return None
        limit = pages * self.client.page_size
        rows = self.client.select_rows(self.schema, self.table, wanted,
                                       [_filter(column, "contains", folder.rstrip(os.sep) + os.sep)], max_rows=limit)
        return rows if len(rows) < limit else None

    def existing(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """An existing row as the plan keeps it: key column, key value, values by field key."""
        return {"key_column": self.key, "key": row_value(row, self.key) if self.key else None,
                "fields": {k: row_value(row, c) for k, c in self.columns.items()}}

    def rows_by_key(self, keys: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """Re-select rows by key value (text of the key -> row), in batches of short values."""
        out: dict[str, dict[str, Any]] = {}
        if not self.key:
            return out
        for batch in presence_batches([str(k) for k in keys], KEY_LOOKUP_VALUES, LOOKUP_BYTES):
            rows = self.client.select_rows(self.schema, self.table, sorted(set(self.columns.values())),
                                           [_filter(self.key, "in", multi_value(batch))])
            out.update({str(row_value(r, self.key)): r for r in rows})
        return out


class ClientPool:
    """One client per connection, so metadata and presence share a session and column lookups."""

    def __init__(self, make_client: MakeClient) -> None:
        self._make = make_client
        self._clients: dict[LabKeyConnection, LabKeyClient] = {}

    def __call__(self, connection: LabKeyConnection) -> LabKeyClient:
        """The client for `connection`, made on first use."""
        if connection not in self._clients:
            self._clients[connection] = self._make(connection)
        return self._clients[connection]


class LabKeyPresence:
    """The plan's PresenceChecker: each file's presence key, collisions, and its existing row."""

    def __init__(self, config: SyncConfig, clients: MakeClient) -> None:
        self.config = config
        self.clients = clients

    def check(self, entries: list[PlanEntry], now: datetime) -> dict[str, Presence]:
        """Presence per relpath, looked up in batches. With no file to record, LabKey is not asked."""
        if not entries:
            return {}
        table = WritebackTable.open(self.clients(writeback_connection(self.config)), self.config)
        rows = RowBuilder.of(self.config, now.isoformat())
        groups: dict[str, list[PlanEntry]] = {}
        rendered: dict[str, dict[str, Any]] = {}
        for entry in entries:
            # Every template is rendered now: a template error stops planning, never the write-back.
            rendered[entry.relpath] = rows.file_row(entry, None)
            groups.setdefault(presence_value(entry, rendered[entry.relpath], table.rule), []).append(entry)
        found = table.lookup([v for v in groups if v])
        out: dict[str, Presence] = {}
        for value, members in groups.items():
            presence = self._decide(table, value, members, found.get(value, []), rendered)
            out.update({e.relpath: presence for e in members})
        return out

    def _decide(self, table: WritebackTable, value: str, members: list[PlanEntry],
                rows: list[dict[str, Any]], rendered: Mapping[str, Mapping[str, Any]]) -> Presence:
        skip = self.config.writeback.skip_creates
        if not value:
            return Presence(WriteAction.SKIP_CREATE, None, value, Reason.WRITEBACK_SKIPPED)
        existing = table.existing(rows[0]) if len(rows) == 1 else None
        if existing is not None and existing["key"] is None:  # an update needs the key
            return Presence(WriteAction.SKIP_CREATE, existing, value, Reason.WRITEBACK_SKIPPED)
        action = WriteAction.UPDATE if rows else WriteAction.SKIP_CREATE if skip else WriteAction.CREATE
        if len(rows) > 1 or (len(members) > 1 and aggregator_key(self.config) is None):
            return Presence(action, existing, value, Reason.DUPLICATE_PRESENCE_KEY)
        if table.rule.by_target and table.rule.field != aggregator_key(self.config):  # an aggregator lists them all
            for entry in members:
                cell = rendered[entry.relpath].get(table.rule.field)
                if not holds_target(cell, entry.target or ""):
                    raise ConfigError(f"field '{table.rule.field}' (file_list) renders '{cell}' for {entry.relpath}, "
                                      f"which does not hold its target path {entry.target}; its row could never "
                                      "be found again")
        return Presence(action, existing, value, Reason.WRITEBACK_SKIPPED if action is WriteAction.SKIP_CREATE else None)


def plan_drop(folder: DropFolder, config: SyncConfig, settings: Settings, make_client: MakeClient,
              now: datetime | None = None) -> Plan:
    """Plan a drop with its metadata sources and, when it writes rows back, the presence check."""
    clients = ClientPool(make_client)
    metadata = None
    if config.metadata_match is not None and config.metadata_match.search:
        metadata = DropMetadata.from_config(config, Path(folder.path), render, make_client=clients,
                                            readable=settings.metadata_readable())
    presence = LabKeyPresence(config, clients) if writeback_configured(config) else None
    return make_plan(folder, config, settings, now=now or datetime.now(timezone.utc),
                     metadata=metadata, presence=presence)


def writeback_groups(plan: Plan, action: WriteAction) -> dict[str, list[PlanEntry]]:
    """Files that go ahead with `action`, by presence key (one row each)."""
    groups: dict[str, list[PlanEntry]] = {}
    for entry in plan.entries:
        if entry.goes_ahead and entry.write_action is action and entry.presence_key:
            groups.setdefault(entry.presence_key, []).append(entry)
    return groups


def _shown(value: Any) -> str:
    return "" if value is None else str(value).replace("\n", " ⏎ ")


def _files(members: Sequence[PlanEntry]) -> str:
    first = min(e.relpath for e in members)
    return first if len(members) == 1 else f"{first} (+{len(members) - 1})"


def update_diff_rows(plan: Plan, max_rows: int | None = None) -> list[dict[str, str]]:
    """Per updated row, every field: `from` (stored), `to` (planned) and whether it changes
    (the first rows only, at least `max_rows`, when a caller shows no more)."""
    builder = RowBuilder.of(plan.config, plan.created_at)
    rows: list[dict[str, str]] = []
    for members in writeback_groups(plan, WriteAction.UPDATE).values():
        if max_rows is not None and len(rows) >= max_rows:
            break
        existing = members[0].labkey_row or {}
        stored = existing.get("fields", {})
        planned = builder.group_row(members, None, stored)
        for key, value in planned.items():
            old = stored.get(key)
            changes = "yes" if not same_value(old, value) else "no"
            if value == PENDING_CHECKSUM:
                changes = "yes" if old in (None, "") else "unknown"  # the MD5 exists after the copy
            rows.append({"row": f"{existing.get('key_column')}={existing.get('key')}", "files": _files(members),
                         "field": key, "from": _shown(old), "to": _shown(value), "changes": changes})
    return rows


def create_rows(plan: Plan, max_rows: int | None = None) -> list[dict[str, str]]:
    """One row per planned insert with every field's value (none when `skip_creates`)."""
    if plan.config.writeback.skip_creates:
        return []
    builder = RowBuilder.of(plan.config, plan.created_at)
    out: list[dict[str, str]] = []
    for members in writeback_groups(plan, WriteAction.CREATE).values():
        if max_rows is not None and len(out) >= max_rows:
            break
        planned = builder.group_row(members)
        out.append({"files": _files(members), **{k: _shown(v) for k, v in planned.items()}})
    return out

