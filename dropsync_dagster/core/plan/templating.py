"""Templates: `<name>`, `<source.Field>` placeholders, field functions, replacements, lookups.

Values are inserted literally: a backslash or `$` in a value is just a character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from dropsync_dagster.core.errors import ConfigError

FIELD_FUNCTIONS = frozenset({"now()", "drop_file_mtime()"})
_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?:\.([^<>]+))?>")


@dataclass(frozen=True)
class Placeholder:
    """One `<name>` or `<source.Field>` in a template."""

    text: str
    name: str
    source: str | None
    field: str | None


class ReplacementRule(Protocol):
    """The shape of a `replacements` entry (see config.Replacement)."""

    target: str
    name: str
    replace: str
    with_: str


def placeholders(template: str) -> list[Placeholder]:
    """Every placeholder in `template`, in order."""
    out = []
    for m in _PLACEHOLDER.finditer(template):
        if m.group(2) is None:
            out.append(Placeholder(m.group(0)[1:-1], m.group(1), None, None))
        else:
            out.append(Placeholder(m.group(0)[1:-1], m.group(1), m.group(1), m.group(2)))
    return out


def render(
    template: str,
    variables: Mapping[str, str],
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Fill every placeholder; a value that is missing here is a ConfigError naming it."""
    # Values are joined in as plain text: no backslash or group processing can touch them.
    pieces = _pieces(template)
    out = [pieces[0]]
    for i in range(1, len(pieces), 3):
        out.append(_value(template, pieces[i], pieces[i + 1], variables, metadata))
        out.append(pieces[i + 2])
    return "".join(out)


@lru_cache(maxsize=256)
def _pieces(template: str) -> tuple[str | None, ...]:
    """`literal, name, field, literal, ...`, parsed once per template (planning renders per file)."""
    return tuple(_PLACEHOLDER.split(template))


def _value(
    template: str,
    name: str,
    field: str | None,
    variables: Mapping[str, str],
    metadata: Mapping[str, Mapping[str, Any]] | None,
) -> str:
    if field is None:
        if name not in variables:
            raise ConfigError(f"template '{template}': no value for <{name}>")
        return str(variables[name])
    row = (metadata or {}).get(name)
    if row is None:
        raise ConfigError(f"template '{template}': no row matched in source '{name}'")
    if field not in row:
        raise ConfigError(
            f"template '{template}': source '{name}' has no field '{field}' "
            f"(fields: {', '.join(sorted(map(str, row)))})"
        )
    value = row[field]
    return "" if value is None else str(value)


def apply_replacements(
    values: Mapping[str, Any], rules: Iterable[ReplacementRule], target: str
) -> dict[str, Any]:
    """Apply the rules aimed at `target` ('var' or 'field') in order, as plain substring swaps."""
    out = dict(values)
    for rule in rules:
        if rule.target == target and isinstance(out.get(rule.name), str):
            out[rule.name] = out[rule.name].replace(rule.replace, rule.with_)
    return out


def apply_lookups(variables: Mapping[str, str], lookups: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Translate captured values through `lookups.<var>.<from>: <to>`; unknown values stay."""
    out = dict(variables)
    for name, table in lookups.items():
        if name in out and out[name] in table:
            out[name] = table[out[name]]
    return out
