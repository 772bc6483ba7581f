"""Values and filters of the LabKey test server: column types, conversions, filter operators.

Semantics follow /work/shared/spec/labkey-api.md section 2.2 (multi-value `;` and `{json:[...]}`,
case-insensitive LIKE operators, SQL NULL rules) and section 5 (captions derived from names).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable

JSON_TYPES = {"string": "string", "int": "int", "float": "float", "boolean": "boolean", "date": "date"}
SQL_TYPES = {"string": "varchar", "int": "integer", "float": "double", "boolean": "boolean", "date": "timestamp"}


class ApiError(Exception):
    """A LabKey error reply: HTTP status plus the JSON body the real server would send."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"success": False, "exception": message, **extra}


def label_from_name(name: str) -> str:
    """LabKey's `labelFromName`: `_x` -> ` X`, a space at lower->Upper, first letter upper."""
    out: list[str] = []
    upper_next = True
    prev = ""
    for ch in name:
        if ch == "_":
            out.append(" ")
            upper_next = True
        elif upper_next:
            out.append(ch.upper())
            upper_next = False
        elif prev.islower() and ch.isupper():
            out.append(" " + ch)
        else:
            out.append(ch)
        prev = ch
    return "".join(out).replace("  ", " ").strip()


@dataclass(frozen=True)
class ColumnDef:
    """One column: its name (row key, filter key), caption (label) and type."""

    name: str
    caption: str | None = None
    type: str = "string"
    required: bool = False

    @property
    def label(self) -> str:
        """The caption, derived from the name when none is set (as LabKey does)."""
        return self.caption or label_from_name(self.name)


def _to_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "t", "yes", "y", "1", "on"}:
        return True
    if text in {"false", "f", "no", "n", "0", "off"}:
        return False
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value) if not isinstance(value, int) else value
    if number != int(number):
        raise ValueError(value)
    return int(number)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": str, "int": _to_int, "float": float, "boolean": _to_bool, "date": _to_date,
}


def convert(column: ColumnDef, value: Any) -> Any:
    """Convert an incoming value to the column's type; `""` and None become NULL, as on import."""
    if value is None or (isinstance(value, str) and value == ""):
        return None
    return CONVERTERS[column.type](value)


def to_json(value: Any) -> Any:
    """Serialise a stored value the way the 8.3 format does (dates as `yyyy-MM-dd HH:mm:ss.SSS`)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return value


def split_values(raw: str) -> list[str]:
    """Values of a multi-value filter: `;`/newline separated, or the `{json:[...]}` escape."""
    if raw.startswith("{json:") and raw.endswith("}"):
        parsed = json.loads(raw[len("{json:"):-1])
        return [str(v) for v in parsed]
    return re.split(r"[;\n]", raw)


def text_matches(op: str, cell: Any, raw: str) -> bool:
    """Case-insensitive LIKE semantics; NULL never matches, NOT-variants exclude NULL too."""
    if cell is None:
        return op in {"doesnotcontain", "doesnotstartwith", "containsnoneof"}
    text = str(to_json(cell)).lower()
    if op == "contains":
        return raw.lower() in text
    if op == "doesnotcontain":
        return raw.lower() not in text
    if op == "startswith":
        return text.startswith(raw.lower())
    if op == "doesnotstartwith":
        return not text.startswith(raw.lower())
    hit = any(v.lower() in text for v in split_values(raw))
    return hit if op == "containsoneof" else not hit


def compare(column: ColumnDef, op: str, cell: Any, raw: str) -> bool:
    """Typed comparisons; SQL NULL semantics (NULL <> x is unknown, so false)."""
    if op == "isblank":
        return cell is None
    if op == "isnonblank":
        return cell is not None
    if op in {"in", "notin"}:
        values = split_values(raw)
        wants_null = any(v == "" for v in values)
        typed = {_filter_value(column, v) for v in values if v != ""}
        hit = (cell is None and wants_null) or (cell is not None and cell in typed)
        return hit if op == "in" else (not hit and cell is not None)
    if op in {"between", "notbetween"}:
        lo, _, hi = raw.partition(",")
        if cell is None:
            return False
        inside = _filter_value(column, lo) <= cell <= _filter_value(column, hi)
        return inside if op == "between" else not inside
    if op == "neqornull":
        return cell is None or cell != _filter_value(column, raw)
    if cell is None:
        return False
    value = _filter_value(column, raw)
    return {
        "eq": cell == value, "neq": cell != value, "gt": cell > value,
        "gte": cell >= value, "lt": cell < value, "lte": cell <= value,
    }[op]


TEXT_OPS = {"contains", "doesnotcontain", "startswith", "doesnotstartwith", "containsoneof", "containsnoneof"}
COMPARE_OPS = {"eq", "neq", "neqornull", "gt", "gte", "lt", "lte", "in", "notin", "between",
               "notbetween", "isblank", "isnonblank"}


def _filter_value(column: ColumnDef, raw: str) -> Any:
    try:
        return CONVERTERS[column.type](raw)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, f"Could not convert filter value \"{raw}\" for field {column.name}") from exc


def decode_field_key(text: str) -> str:
    """Undo LabKey's FieldKey escapes ($S=/, $A=&, $T=~, $D=$, $C=,)."""
    for code, ch in (("$S", "/"), ("$A", "&"), ("$T", "~"), ("$C", ","), ("$D", "$")):
        text = text.replace(code, ch)
    return text
