"""In-memory LabKey tables for the test server: keys, inserts/updates/deletes and the 8.3 select shape.

Behaviour follows /work/shared/spec/labkey-api.md (sections 2 and 3); the HTTP side lives in
`labkey_server.py`, values and filter operators in `labkey_server_values.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from dropsync_dagster_tests.support.labkey_server_values import (
    COMPARE_OPS,
    JSON_TYPES,
    SQL_TYPES,
    TEXT_OPS,
    ApiError,
    ColumnDef,
    convert,
    decode_field_key,
    predicate,
    to_json,
)

@dataclass
class Table:
    """One query of one schema in one container, with its rows keyed by the key column."""

    container: str
    schema: str
    query: str
    columns: list[ColumnDef]
    key: str | None = "RowId"
    auto_key: bool = True
    result_names: str = "name"  # "name": lists (non-null fields by name); "lower": hard tables
    rows: dict[Any, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1

    def column(self, ref: str, by_caption: bool = False) -> ColumnDef | None:
        """Find a column by name, case-insensitively (and by caption when inserting)."""
        wanted = ref.strip().lower()
        for col in self.columns:
            if col.name.lower() == wanted:
                return col
        if by_caption:
            for col in self.columns:
                if col.label.lower() == wanted:
                    return col
        return None

    @property
    def key_column(self) -> ColumnDef | None:
        """The single primary-key column, or None for a table without one."""
        return self.column(self.key) if self.key else None

    # ---- mutations -------------------------------------------------------------------
    def _typed_row(self, raw: Mapping[str, Any], number: int, by_caption: bool) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        errors = []
        for ref, value in raw.items():
            col = self.column(ref, by_caption=by_caption)
            if col is None:
                continue  # unknown input columns are ignored, as the DataIterator does
            try:
                typed[col.name] = convert(col, value)
            except (ValueError, TypeError):
                errors.append({"field": col.name, "message": f"Could not convert value '{value}' for field {col.name}"})
        if errors:
            raise _row_error(self, raw, number, errors)
        return typed

    def insert(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert rows all-or-nothing; returns the stored rows."""
        staged = []
        for number, raw in enumerate(rows):
            row = {col.name: None for col in self.columns}
            row.update(self._typed_row(raw, number, by_caption=True))
            # A key the server does not generate is required like any other required column.
            missing = [c.name for c in self.columns if row[c.name] is None
                       and (c.name == self.key and not self.auto_key or c.required and c.name != self.key)]
            if missing:
                raise _row_error(self, raw, number, [{"field": m, "message": f"Missing value for required property: {m}"} for m in missing])
            staged.append(row)
        next_id, added = self.next_id, set()
        for row in staged:
            if self.key and self.auto_key:
                col = self.key_column
                row[self.key] = next_id if col and col.type == "int" else f"urn:lsid:dropsync.test:{self.query}:{next_id}"
                next_id += 1
            key = row.get(self.key) if self.key else len(self.rows) + len(added)
            if key is None or key in self.rows or key in added:
                message = f"duplicate key value violates unique constraint: {self.key}={key}"
                raise ApiError(400, message, errors=[{"msg": message, "message": message}])
            added.add(key)
            row["EntityId"] = str(uuid.uuid4())
        self.next_id = next_id
        for row in staged:
            self.rows[row[self.key] if self.key else len(self.rows)] = row
        return staged

    def _existing_key(self, raw: Mapping[str, Any]) -> Any:
        col = self.key_column
        if col is None:
            raise ApiError(500, f"The query '{self.query}' has no primary key and cannot be updated.")
        value = next((v for k, v in raw.items() if k.lower() == col.name.lower()), None)
        try:
            return convert(col, value)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, f"Could not convert value '{value}' for field {col.name}") from exc

    def update(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Update rows by key (names only, no captions); a missing row is a 404, nothing applied."""
        changes = []
        for number, raw in enumerate(rows):
            key = self._existing_key(raw)
            if key not in self.rows:
                raise ApiError(404, "The existing row was not found.")
            values = self._typed_row(raw, number, by_caption=False)
            values.pop(self.key, None)
            changes.append((key, values))
        for key, values in changes:
            self.rows[key].update(values)
        return [self.rows[key] for key, _ in changes]

    def delete(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Delete rows by key; missing rows are skipped silently."""
        keys = [self._existing_key(raw) for raw in rows]
        return [self.rows.pop(k) for k in keys if k in self.rows]

    def result_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A stored row as insert/update/delete return it (lists: non-null by name; hard tables: lower-case)."""
        values = {k: to_json(v) for k, v in row.items() if k != "EntityId"}
        if self.result_names == "lower":
            return {k.lower(): v for k, v in values.items()}
        return {"EntityId": row["EntityId"], **{k: v for k, v in values.items() if v is not None}}

    # ---- select ----------------------------------------------------------------------
    def select(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        """Answer a getQuery/selectRows form in the 8.3 shape."""
        messages: list[dict[str, str]] = []
        rows = list(self.rows.values())
        for param, values in form.items():
            if not param.startswith("query.") or "~" not in param:
                continue
            ref, _, op = param[len("query."):].rpartition("~")
            if op == "":
                continue  # HAS_ANY_VALUE
            col = self.column(decode_field_key(ref))
            if col is None:
                messages.append({"area": "filter", "type": "WARNING",
                                 "content": f"Ignoring filter/sort on column '{ref}' because it does not exist."})
                continue
            if op not in TEXT_OPS and op not in COMPARE_OPS:
                raise ApiError(400, f"Unsupported filter operator '{op}' for column {col.name}")
            for raw in values:  # repeated values of one key are AND-ed
                test = predicate(col, op, raw)
                rows = [r for r in rows if test(r[col.name])]
        rows = self._sorted(rows, _first(form, "query.sort"))
        total = len(rows)
        max_rows = int(_first(form, "query.maxRows") or 100000)
        if max_rows >= 0:
            offset = int(_first(form, "query.offset") or 0)
            rows = rows[offset:offset + max_rows]
        shown = self._shown_columns(_first(form, "query.columns"))
        body: dict[str, Any] = {
            "schemaName": self.schema, "queryName": self.query, "formatVersion": 8.3,
            "metaData": self._metadata(shown), "columnModel": [self._column_model(c) for c in shown],
            "rows": [{c.name: to_json(r[c.name]) for c in shown} for r in rows], "rowCount": total,
        }
        if messages:
            body["messages"] = messages
        return body

    def _sorted(self, rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
        specs = [s.strip() for s in (sort or self.key or "").split(",") if s.strip()]
        for spec in reversed(specs):
            col = self.column(spec.lstrip("-"))
            if col is not None:  # NULLs sort last ascending, as on PostgreSQL
                rows.sort(key=lambda r, n=col.name: (r[n] is None, r[n] if r[n] is not None else 0),
                          reverse=spec.startswith("-"))
        return rows

    def _shown_columns(self, columns: str | None) -> list[ColumnDef]:
        if not columns:
            return list(self.columns)
        shown = [c for c in (self.column(decode_field_key(ref)) for ref in columns.split(",")) if c]
        key = self.key_column
        if key is not None and key not in shown:
            shown.insert(0, key)  # PK columns are always included
        return list(dict.fromkeys(shown))

    def _metadata(self, shown: list[ColumnDef]) -> dict[str, Any]:
        meta: dict[str, Any] = {"root": "rows", "totalProperty": "rowCount",
                                "fields": [self._field(c) for c in shown], "description": None,
                                "title": self.query, "importMessage": None, "importTemplates": []}
        if self.key:
            meta["id"] = self.key
        return meta

    def _field(self, col: ColumnDef) -> dict[str, Any]:
        is_key = col.name == self.key
        return {"name": col.name, "fieldKey": col.name, "fieldKeyPath": col.name, "fieldKeyArray": [col.name],
                "caption": col.label, "shortCaption": col.label, "type": JSON_TYPES[col.type],
                "jsonType": JSON_TYPES[col.type], "sqlType": SQL_TYPES[col.type], "friendlyType": col.type,
                "isKeyField": is_key, "keyField": is_key, "hidden": False, "isHidden": False,
                "nullable": not (col.required or is_key), "required": col.required,
                "autoIncrement": is_key and self.auto_key}

    def _column_model(self, col: ColumnDef) -> dict[str, Any]:
        return {"dataIndex": col.name, "header": col.label, "hidden": False, "sortable": True,
                "filterable": True, "editable": col.name != self.key, "required": col.required, "scale": 4000}


def _first(form: Mapping[str, list[str]], key: str) -> str | None:
    # The real server reads only the first value of a repeated parameter (QuerySettings._getParameter).
    values = form.get(key)
    return values[0] if values else None


def _row_error(table: Table, raw: Mapping[str, Any], number: int, errors: list[dict[str, str]]) -> ApiError:
    inner = [{**e, "id": e["field"], "msg": e["message"]} for e in errors]
    return ApiError(400, errors[0]["message"], errorCount=len(errors),
                    errors=[{"exception": errors[0]["message"], "errors": inner, "schemaName": table.schema,
                             "queryName": table.query, "row": dict(raw), "rowNumber": number}],
                    extraContext={})
