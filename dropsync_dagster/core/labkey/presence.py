"""Batched presence lookup: which LabKey rows already hold each target path (or presence key).

Strategy, and why: one server-side multi-value filter per batch of values — `containsoneof` for
`contains`, `in` for `equal` — then the rows are matched to the values locally.
- Requests grow with batches, not files: 1,000 targets are 2 selects at 500 values a batch.
- Cost does not grow with the table: a paginated select of key + presence column for the whole
  table (the other option) reads every row of `exp.data` on every plan, however small the drop.
- Request size is bounded: filters travel in the POST body (never the URL), and a batch is cut
  at `MAX_BATCH_BYTES` so it stays far below servlet form limits (Tomcat's maxPostSize is 2 MB);
  every batch is one form parameter, far below maxParameterCount.
- A value holding `;` or a newline would be split by the server, so such a batch is sent with
  the `{json:[...]}` escape (spec section 2.2).
- The server's `containsoneof` is a case-insensitive LIKE, so it only pre-selects; the local
  match decides, case-sensitively, since paths are case-sensitive.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Iterable, Mapping, Sequence

MAX_BATCH_VALUES = 500
MAX_BATCH_BYTES = 256 * 1024


class PresenceMatch(StrEnum):
    """How a presence value is compared with the presence column."""

    CONTAINS = "contains"  # the column's text contains the value (default for `file_list`)
    EQUAL = "equal"  # the column's text equals the value


def multi_value(values: Sequence[str]) -> str:
    """One multi-value filter value: `a;b;c`, or `{json:[...]}` when a value would be split."""
    if any(";" in v or "\n" in v or "\r" in v or v.startswith("{json:") for v in values):
        return "{json:" + json.dumps(list(values)) + "}"
    return ";".join(values)


def presence_batches(values: Iterable[str], max_values: int = MAX_BATCH_VALUES,
                     max_bytes: int = MAX_BATCH_BYTES) -> list[list[str]]:
    """Split distinct non-empty values into batches bounded by count and encoded size."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for value in dict.fromkeys(v for v in values if v):
        # Upper bound of the form-encoded size (every byte %XX) plus separator/JSON quotes: cheap,
        # and a batch can only come out smaller than the limit, never larger.
        cost = 3 * len(value.encode("utf-8")) + 3
        if current and (len(current) >= max_values or size + cost > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(value)
        size += cost
    if current:
        batches.append(current)
    return batches


def presence_operator(match: PresenceMatch) -> str:
    """The LabKey filter suffix that pre-selects rows for a batch."""
    return "containsoneof" if match is PresenceMatch.CONTAINS else "in"


def group_rows(values: Sequence[str], rows: Sequence[Mapping[str, Any]], column: str,
               match: PresenceMatch) -> dict[str, list[dict[str, Any]]]:
    """Assign each row to every value it holds in `column`; every value gets a (maybe empty) list."""
    found: dict[str, list[dict[str, Any]]] = {v: [] for v in values}
    for row in rows:
        cell = row.get(column)
        if cell is None:
            continue
        text = str(cell)
        if match is PresenceMatch.EQUAL:
            if text in found:
                found[text].append(dict(row))
            continue
        for value in values:
            if value in text:
                found[value].append(dict(row))
    return found
