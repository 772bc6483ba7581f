"""Our LabKey domain layer over the official `labkey` client: connection settings, credentials,
column resolution, paginated selects, batched presence lookup and batched, retried writes.

Columns and field resolution live in `labkey_columns.py`, retries and error mapping in
`labkey_transport.py`, the presence strategy in `labkey_presence.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import requests
from labkey.api_wrapper import APIWrapper
from labkey.query import QueryFilter
from requests.adapters import HTTPAdapter

from dropsync_dagster.core.errors import ConfigError, DropsyncError
from dropsync_dagster.core.labkey import API_KEY_ENV
from dropsync_dagster.core.labkey.location import LabKeyConnection
from dropsync_dagster.core.labkey.columns import TableInfo, row_value, table_info_from_response
from dropsync_dagster.core.labkey.presence import (
    MAX_BATCH_BYTES,
    MAX_BATCH_VALUES,
    PresenceMatch,
    group_rows,
    multi_value,
    presence_batches,
    presence_operator,
)
from dropsync_dagster.core.labkey.retry import RetryPolicy
from dropsync_dagster.core.labkey.transport import call_labkey

# Filter suffixes the client knows (QueryFilter.Types); "" (HAS_ANY_VALUE) is meaningless in config.
FILTER_TYPES = frozenset(v for k, v in vars(QueryFilter.Types).items() if not k.startswith("_") and v)


def credentials_source(connection: LabKeyConnection, api_key: str | None) -> str:
    """Where the credentials come from, for messages; never the credentials themselves."""
    netrc = requests.utils.get_netrc_auth(connection.url) is not None
    if api_key and netrc:
        return f"{API_KEY_ENV} (a ~/.netrc entry for this host is sent too and takes precedence)"
    if api_key:
        return API_KEY_ENV
    return "~/.netrc" if netrc else f"no credentials (set {API_KEY_ENV} or add ~/.netrc for the host)"


class _DefaultTimeoutAdapter(HTTPAdapter):
    """Applies a timeout to requests sent without one: the client's CSRF GET has none (spec 1.4)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


@dataclass(frozen=True)
class Filter:
    """One select filter: column (name or caption), LabKey filter type suffix, value."""

    field: str
    type: str
    value: Any = ""

    @classmethod
    def parse(cls, item: Mapping[str, Any] | "Filter", where: str) -> "Filter":
        """From `{field, type, value}`; an unknown type -> ConfigError naming the accepted ones."""
        if isinstance(item, Filter):
            return item
        kind = str(item.get("type", "eq")).strip().lower()
        if kind not in FILTER_TYPES:
            raise ConfigError(f"{where}: unknown filter type '{kind}'; use one of {', '.join(sorted(FILTER_TYPES))}")
        if not item.get("field"):
            raise ConfigError(f"{where}: a filter needs a field")
        return cls(field=str(item["field"]), type=kind, value=item.get("value", ""))

    def wire_value(self) -> str:
        """The value as the server reads it; lists of a multi-value type become one escaped value."""
        if isinstance(self.value, (list, tuple)):
            return multi_value([str(v) for v in self.value])
        return "" if self.value is None else str(self.value)  # None would drop the filter (spec 2.2)


class LabKeyClient:
    """A LabKey container reached through the official client; one per thread (one HTTP session)."""

    def __init__(self, connection: LabKeyConnection, api_key: str | None = None,
                 retry: RetryPolicy = RetryPolicy(), page_size: int = 5000, write_batch: int = 200,
                 lookup_values: int = MAX_BATCH_VALUES, lookup_bytes: int = MAX_BATCH_BYTES) -> None:
        key = api_key or None  # None: the client's ~/.netrc lookup
        self.connection = connection
        self.retry = retry
        self.page_size = page_size
        self.write_batch = write_batch
        self.lookup_values = lookup_values
        self.lookup_bytes = lookup_bytes
        self._credentials = credentials_source(connection, key)
        self._secrets = (key,)  # redacted from every error text
        self._api = APIWrapper(connection.host, connection.container, connection.context,
                               use_ssl=connection.use_ssl, api_key=key)
        adapter = _DefaultTimeoutAdapter(retry.timeout)
        # The client exposes no timeout for its CSRF handshake; its session is the only hook.
        session: requests.Session = self._api.server_context._session  # noqa: SLF001
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._tables: dict[tuple[str, str], TableInfo] = {}

    def __repr__(self) -> str:
        return f"LabKeyClient({self.connection.url})"

    def _call(self, what: str, call: Callable[[], Any], idempotent: bool = True,
              missing_row: bool = False) -> Any:
        return call_labkey(f"LabKey {what} in {self.connection.url}", call, self.retry, self._credentials,
                           idempotent, missing_row, secrets=self._secrets)

    def table_info(self, schema: str, table: str) -> TableInfo:
        """Columns (name, caption) and key column of `schema.table`, fetched once per client."""
        cache_key = (schema.lower(), table.lower())
        if cache_key not in self._tables:
            reply = self._call(f"columns of {schema}.{table}", lambda: self._api.query.select_rows(
                schema, table, max_rows=0, timeout=self.retry.timeout))
            self._tables[cache_key] = table_info_from_response(schema, table, reply)
        return self._tables[cache_key]

    def resolve_fields(self, schema: str, table: str, field_keys: Iterable[str]) -> dict[str, str]:
        """Map field keys (names or captions, any case/punctuation) to column names of the table."""
        return self.table_info(schema, table).resolve(field_keys)

    def select_rows(self, schema: str, table: str, columns: Sequence[str] | None = None,
                    filters: Sequence[Mapping[str, Any] | Filter] | None = None,
                    max_rows: int | None = None) -> list[dict[str, Any]]:
        """All rows matching `filters` (AND-ed), page by page in key order; columns/filters may be captions."""
        info = self.table_info(schema, table)
        parsed = [Filter.parse(f, f"filter on {info.label}") for f in filters or ()]
        names = info.resolve([*(columns or ()), *(f.field for f in parsed)])
        wanted = list(dict.fromkeys(names[c] for c in columns or ()))
        if wanted and info.key and info.key not in wanted:
            wanted.insert(0, info.key)
        query_filters = [QueryFilter(names[f.field], f.wire_value(), f.type) for f in parsed]
        rows: list[dict[str, Any]] = []
        while max_rows is None or len(rows) < max_rows:
            limit = self.page_size if max_rows is None else min(self.page_size, max_rows - len(rows))
            offset = len(rows)
            reply = self._call(f"select from {info.label}", lambda: self._api.query.select_rows(
                schema, table, filter_array=query_filters, columns=",".join(wanted) or None, max_rows=limit,
                offset=offset, sort=info.key, timeout=self.retry.timeout))
            page = reply.get("rows") if isinstance(reply, dict) else None
            if not isinstance(page, list):
                raise DropsyncError(f"LabKey select from {info.label} in {self.connection.url} returned no rows list")
            rows.extend(info.canonical_row(r) for r in page)
            if len(page) < limit or len(rows) >= int(reply.get("rowCount", 0)):
                break
        return rows

    def find_rows(self, schema: str, table: str, field: str, values: Iterable[str],
                  match: PresenceMatch | str = PresenceMatch.CONTAINS,
                  columns: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Rows whose `field` holds each value (`contains` or `equal`), in batches: {value: [rows]}.

        Rows carry the key column and `field` (plus `columns`, or every default column if None).
        """
        mode = PresenceMatch(match)
        column = self.resolve_fields(schema, table, [field])[field]
        wanted = None if columns is None else [*columns, column]
        values = [str(v) for v in values]
        found: dict[str, list[dict[str, Any]]] = {v: [] for v in values}
        for batch in presence_batches(values, self.lookup_values, self.lookup_bytes):
            rows = self.select_rows(schema, table, wanted,
                                    [Filter(column, presence_operator(mode), multi_value(batch))])
            found.update(group_rows(batch, rows, column, mode))
        return found

    def insert_rows(self, schema: str, table: str, rows: Sequence[Mapping[str, Any]],
                    on_batch: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
        """Insert rows in batches; returns the stored rows (key column under its own name), in order."""
        return self._write("insert", schema, table, rows, on_batch)

    def update_rows(self, schema: str, table: str, rows: Sequence[Mapping[str, Any]],
                    on_batch: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
        """Update rows by the table's key column (each row must carry it) in batches; returns them."""
        return self._write("update", schema, table, rows, on_batch)

    def _write(self, command: str, schema: str, table: str, rows: Sequence[Mapping[str, Any]],
               on_batch: Callable[[list[dict[str, Any]]], None] | None) -> list[dict[str, Any]]:
        info = self.table_info(schema, table)
        names = info.resolve({k for row in rows for k in row})
        payload = [{names[k]: v for k, v in row.items()} for row in rows]
        if command == "update":
            if info.key is None:
                raise ConfigError(f"{info.label} in {self.connection.url} has no primary key; rows cannot be updated")
            missing = [n for n, row in enumerate(payload) if row_value(row, info.key) is None]
            if missing:
                raise DropsyncError(f"update of {info.label}: row {missing[0]} has no {info.key}")
        send = self._api.query.insert_rows if command == "insert" else self._api.query.update_rows
        written: list[dict[str, Any]] = []
        for start in range(0, len(payload), self.write_batch):
            batch = payload[start:start + self.write_batch]
            progress = f" (rows {start + 1}-{start + len(batch)} of {len(payload)}; {len(written)} written before)"
            reply = self._call(f"{command} into {info.label}{progress}",
                               lambda: send(schema, table, batch, timeout=self.retry.timeout),
                               idempotent=command == "update", missing_row=command == "update")
            done = [info.canonical_row(r) for r in reply.get("rows", [])] if isinstance(reply, dict) else []
            if len(done) != len(batch):
                raise DropsyncError(f"LabKey {command} into {info.label} returned {len(done)} rows for {len(batch)}")
            written.extend(done)
            if on_batch is not None:
                on_batch(done)
        return written


def open_client(connection: LabKeyConnection, api_key: str | None, attempts: int, retry_delay: float,
                timeout: float) -> LabKeyClient:
    """A client for one drop's container with the deployment's credentials and retries, and the
    planning batch sizes (one per thread: it holds an HTTP session)."""
    from dropsync_dagster.core.labkey.planning import LOOKUP_BYTES, LOOKUP_VALUES, WRITE_BATCH

    retry = RetryPolicy(attempts=attempts, base_delay=retry_delay, timeout=timeout)
    return LabKeyClient(connection, api_key=api_key, retry=retry, write_batch=WRITE_BATCH,
                        lookup_values=LOOKUP_VALUES, lookup_bytes=LOOKUP_BYTES)
