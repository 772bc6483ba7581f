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


TEXT_OPS = {"contains", "doesnotcontain", "startswith", "doesnotstartwith", "containsoneof", "containsnoneof"}
COMPARE_OPS = {"eq", "neq", "neqornull", "gt", "gte", "lt", "lte", "in", "notin", "between",
               "notbetween", "isblank", "isnonblank"}
ORDER_OPS = {"eq": lambda a, b: a == b, "neq": lambda a, b: a != b, "gt": lambda a, b: a > b,
             "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def predicate(column: ColumnDef, op: str, raw: str) -> Callable[[Any], bool]:
    """Compile one filter clause into a test of a stored cell (parsed once per request, not per row).

    LIKE operators are case-insensitive; typed operators follow SQL NULL rules (NULL <> x is not true).
    """
    if op in TEXT_OPS:
        return _text_predicate(op, raw)
    if op == "isblank":
        return lambda cell: cell is None
    if op == "isnonblank":
        return lambda cell: cell is not None
    if op in {"in", "notin"}:
        values = split_values(raw)
        wants_null = "" in values
        typed = {_filter_value(column, v) for v in values if v != ""}
        if op == "in":
            return lambda cell: cell in typed if cell is not None else wants_null
        return lambda cell: cell is not None and cell not in typed
    if op in {"between", "notbetween"}:
        lo_raw, _, hi_raw = raw.partition(",")
        lo, hi = _filter_value(column, lo_raw), _filter_value(column, hi_raw)
        inside = op == "between"
        return lambda cell: cell is not None and (lo <= cell <= hi) == inside
    value = _filter_value(column, raw)
    if op == "neqornull":
        return lambda cell: cell is None or cell != value
    compare = ORDER_OPS[op]
    return lambda cell: cell is not None and compare(cell, value)


def _text_predicate(op: str, raw: str) -> Callable[[Any], bool]:
    negated = op in {"doesnotcontain", "doesnotstartwith", "containsnoneof"}
    if op in {"containsoneof", "containsnoneof"}:
        needles = [v.lower() for v in split_values(raw)]
    else:
        needles = [raw.lower()]
    anchor = "^" if op in {"startswith", "doesnotstartwith"} else ""
    # one regex alternation: evaluated in C, so 500 needles over 10,000 rows stay fast
    pattern = re.compile(anchor + "(?:" + "|".join(re.escape(n) for n in needles) + ")", re.DOTALL)

    def test(cell: Any) -> bool:
        if cell is None:
            return negated  # NOT LIKE is true for NULL in LabKey's generated SQL (it adds OR IS NULL)
        return (pattern.search(str(to_json(cell)).lower()) is not None) != negated
    return test


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
