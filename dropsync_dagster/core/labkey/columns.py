"""A LabKey table's columns and key, and the one place where field keys are resolved to columns.

`sync.yml` may name a column by its name (`Path_To_Synced_Data`) or its caption
(`Path To Synced Data`). The server only understands names in filters, `query.columns` and
updates (a caption there is silently ignored), so every field key goes through
`resolve_fields` once per table before it reaches the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from dropsync_dagster.core.errors import ConfigError


@dataclass(frozen=True)
class Column:
    """One column: `name` is what rows, filters and updates use; `caption` is its label."""

    name: str
    caption: str


@dataclass(frozen=True)
class TableInfo:
    """Columns of `schema.table` and its primary key column (`metaData.id`), if it has one."""

    schema: str
    table: str
    columns: tuple[Column, ...]
    key: str | None

    @property
    def label(self) -> str:
        """`schema.table`, for messages."""
        return f"{self.schema}.{self.table}"

    def resolve(self, field_keys: Iterable[str]) -> dict[str, str]:
        """Resolve field keys (names or captions) to column names; see `resolve_fields`."""
        return resolve_fields(field_keys, self.columns, self.label)

    def canonical_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A returned row with its keys renamed to the column names (servers differ in case: `rowid`)."""
        by_lower = {c.name.lower(): c.name for c in self.columns}
        return {by_lower.get(k.lower(), k): v for k, v in row.items()}


def normalize_field(text: str) -> str:
    """Case- and punctuation-insensitive form: `Path To Synced Data` == `path_to_synced_data`."""
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def describe_columns(columns: Sequence[Column]) -> str:
    """`Name, Path_To_Synced_Data (Path To Synced Data), ...` for error messages."""
    return ", ".join(c.name if c.caption in ("", c.name) else f"{c.name} ({c.caption})" for c in columns)


def resolve_fields(field_keys: Iterable[str], columns: Sequence[Column], table: str) -> dict[str, str]:
    """Map each field key to a column name, trying exact name, then case-insensitive name or caption,
    then punctuation-insensitive name or caption; no match or two columns at one tier -> ConfigError."""
    tiers = (
        lambda c: (c.name,),
        lambda c: (c.name.casefold(), c.caption.casefold()),
        lambda c: (normalize_field(c.name), normalize_field(c.caption)),
    )
    probes = (lambda k: k, lambda k: k.strip().casefold(), normalize_field)
    resolved: dict[str, str] = {}
    for field_key in dict.fromkeys(field_keys):
        for forms, probe in zip(tiers, probes):
            wanted = probe(field_key)
            hits = list(dict.fromkeys(c.name for c in columns if wanted in forms(c)))
            if len(hits) > 1:
                raise ConfigError(
                    f"field '{field_key}' is ambiguous in {table}: it matches columns {', '.join(hits)}"
                )
            if hits:
                resolved[field_key] = hits[0]
                break
        else:
            raise ConfigError(
                f"field '{field_key}' matches no column of {table}; its columns are: {describe_columns(columns)}"
            )
    return resolved


def row_value(row: Mapping[str, Any], column: str) -> Any:
    """A row's value for `column`, looked up case-insensitively (servers differ in key case)."""
    if column in row:
        return row[column]
    wanted = column.lower()
    return next((v for k, v in row.items() if k.lower() == wanted), None)


def table_info_from_response(schema: str, table: str, response: Mapping[str, Any]) -> TableInfo:
    """Read columns (`metaData.fields`: name, caption) and the key (`metaData.id`) of a getQuery reply."""
    meta = response.get("metaData")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("fields"), list):
        raise ConfigError(f"LabKey answered the column query for {schema}.{table} without metaData.fields")
    columns = tuple(
        Column(name=str(f["name"]), caption=str(f.get("caption") or f.get("shortCaption") or f["name"]))
        for f in meta["fields"]
        if isinstance(f, Mapping) and f.get("name")
    )
    key = meta.get("id")
    return TableInfo(schema=schema, table=table, columns=columns, key=str(key) if key else None)
