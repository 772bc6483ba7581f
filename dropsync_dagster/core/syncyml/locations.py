"""Where a `sync.yml` problem is: key paths mapped to lines, pydantic errors as one line each."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


def key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path (tuple of keys and list indexes) to its 1-based line."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, key_node.value)
            out[key] = key_node.start_mark.line + 1
            out.update(key_lines(value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*prefix, i)] = item.start_mark.line + 1
            out.update(key_lines(item, (*prefix, i)))
    return out


def line_of(lines: dict[tuple, int], loc: tuple) -> int:
    """The line of the deepest known prefix of `loc` (1 when nothing is known)."""
    for n in range(len(loc), 0, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return 1


def dotted(loc: tuple) -> str:
    """A key path as people write it: `fields.Name`, `metadata_sources[0].path`."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def describe(path: Path, exc: ValidationError, lines: dict[tuple, int], root: type[BaseModel]) -> str:
    """Turn pydantic's first error into one line, suggesting the closest key for unknown keys."""
    errors = exc.errors()
    # A misspelt required key shows up as "missing" before "unknown"; the unknown key is the cause.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    # pydantic puts the union/literal branch names into loc; keep only real keys.
    loc = tuple(p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(("literal[", "function-")))
    where = f"{path}:{line_of(lines, loc)}: {dotted(loc)}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key{_suggestion(root, loc)}"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {err['msg']}"


def _suggestion(root: type[BaseModel], loc: tuple) -> str:
    model = _model_at(root, loc[:-1])
    if model is None:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc`."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)), None
        )
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
