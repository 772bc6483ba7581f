"""Metadata matching (spec "Metadata sources and matching"): ordered rules, the first rule that
finds a row wins, exact trimmed equality, more than one row is `metadata_ambiguous`, none is
`metadata_missing`; `metadata_derive` adds variables without overwriting captured ones.

Sources are loaded once per drop by `DropMetadata` (see `metadata_sources.py` for the loaders).
Key templates are rendered by a callable handed in (templating lives in `core/plan/templating.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from dropsync_dagster.core.syncyml.regex import compile_bounded
from dropsync_dagster.core.syncyml.schema import DeriveRule, MatchRule, MetadataSource, SyncConfig
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.location import LabKeyConnection
from dropsync_dagster.core.drops.layout import confined
from dropsync_dagster.core.plan.metadata_sources import MetadataTable, key_text, load_csv, load_excel, load_labkey
from dropsync_dagster.core.model import Reason

if TYPE_CHECKING:
    from dropsync_dagster.core.labkey.connection import LabKeyClient

Render = Callable[[str, Mapping[str, str]], str]
READABLE_NAMED = "the drop folder, DROPSYNC_ALLOWED_ROOTS and DROPSYNC_METADATA_ROOTS"


@dataclass(frozen=True)
class MetadataResult:
    """Rows matched for one file (source name -> row), derived variables, or why none."""

    rows: dict[str, dict[str, Any]]
    derived: dict[str, str]
    reason: Reason | None = None
    detail: str = ""


def match(variables: Mapping[str, str], rules: Sequence[MatchRule], default_key_template: str | None,
          render: Render, tables: Mapping[str, MetadataTable]) -> MetadataResult:
    """Try `rules` in order; the first that finds rows decides: one row matches, several are ambiguous."""
    tried = []
    for rule in rules:
        template = rule.key_template or default_key_template
        if template is None:
            raise ConfigError(f"metadata_match: rule on {rule.source}.{rule.field} has no key_template")
        key = render(template, variables).strip()
        if not key:
            continue  # an empty key would match every blank cell
        rows = tables[rule.source].lookup(rule.field, key)
        if len(rows) > 1:
            return MetadataResult({}, {}, Reason.METADATA_AMBIGUOUS,
                                  f"{len(rows)} rows of {rule.source} have {rule.field} = '{key}'")
        if rows:
            return MetadataResult({rule.source: rows[0]}, {})
        tried.append(f"{rule.source}.{rule.field} = '{key}'")
    return MetadataResult({}, {}, Reason.METADATA_MISSING, "no row with " + (" or ".join(tried) or "a non-empty key"))


def derive(variables: Mapping[str, str], rows: Mapping[str, Mapping[str, Any]], rules: Sequence[DeriveRule],
           tables: Mapping[str, MetadataTable]) -> dict[str, str]:
    """Variables from the named groups of each rule's regex; never one already captured or derived."""
    derived: dict[str, str] = {}
    for rule in rules:
        row = rows.get(rule.source)
        if row is None:
            continue  # this file matched in another source
        pattern = compile_bounded(rule.regex, f"metadata_derive regex on {rule.source}.{rule.field}")
        found = pattern.search(key_text(row.get(tables[rule.source].column(rule.field))))
        for name, value in (found.groupdict() if found else {}).items():
            if value is not None and name not in variables and name not in derived:
                derived[name] = value
    return derived


MakeClient = Callable[[LabKeyConnection], "LabKeyClient"]


def default_client(connection: LabKeyConnection) -> LabKeyClient:
    """A client with the library's defaults (the LabKey client is imported only when a source needs it)."""
    from dropsync_dagster.core.labkey.connection import LabKeyClient

    return LabKeyClient(connection)


class DropMetadata:
    """A drop's metadata: sources loaded once (on first use), then `match(variables)` per file."""

    def __init__(self, sources: Sequence[MetadataSource], rules: Sequence[MatchRule], default_key_template: str | None,
                 derive_rules: Sequence[DeriveRule], required: bool, drop_folder: Path, render: Render,
                 labkey: LabKeyConnection | None = None,
                 make_client: MakeClient | None = None,
                 readable: Sequence[Path] = ()) -> None:
        self.sources = {s.name: s for s in sources}
        self.rules = list(rules)
        self.default_key_template = default_key_template
        self.derive_rules = list(derive_rules)
        self.required = required
        self.drop_folder = drop_folder
        self.render = render
        self.labkey = labkey
        self.make_client = make_client or default_client
        # CSV/Excel files are read only from the drop and these folders (allowed and metadata roots).
        self.readable = (Path(os.path.realpath(drop_folder)), *readable)
        self._tables: dict[str, MetadataTable] | None = None
        self._clients: dict[LabKeyConnection, LabKeyClient] = {}

    @classmethod
    def from_config(cls, config: SyncConfig, drop_folder: Path, render: Render,
                    make_client: MakeClient | None = None,
                    readable: Sequence[Path] = ()) -> "DropMetadata":
        """From a drop's SyncConfig; `render(template, variables)` fills the key templates;
        file sources are read from the drop and the `readable` folders only."""
        section = config.labkey.model_dump(by_alias=True) if config.labkey is not None else None
        match_section = config.metadata_match
        return cls(
            sources=config.metadata_sources,
            rules=match_section.search if match_section is not None else [],
            default_key_template=match_section.key_template if match_section is not None else None,
            derive_rules=config.metadata_derive, required=config.metadata_required, drop_folder=drop_folder,
            render=render, labkey=LabKeyConnection.from_section(section) if section else None,
            make_client=make_client, readable=readable)

    def tables(self) -> dict[str, MetadataTable]:
        """Every source a rule uses, loaded once; unknown sources or fields -> ConfigError."""
        if self._tables is None:
            used = [*self.rules, *self.derive_rules]
            for rule in used:
                if rule.source not in self.sources:
                    raise ConfigError(f"metadata rule names unknown source '{rule.source}' "
                                      f"(known: {', '.join(sorted(self.sources)) or 'none'})")
            tables = {}
            for name in dict.fromkeys(r.source for r in used):
                needed = [r.field for r in used if r.source == name]
                tables[name] = self._load(self.sources[name], needed)
                for field_key in needed:
                    tables[name].column(field_key)  # fail now, not on the first file
            self._tables = tables
        return self._tables

    def _load(self, spec: MetadataSource, needed: Sequence[str]) -> MetadataTable:
        if spec.type in ("csv", "excel"):
            if not spec.path:
                raise ConfigError(f"metadata source '{spec.name}': a {spec.type} source needs a path")
            path = confined(self.drop_folder / spec.path,  # an absolute path stays absolute
                            self.readable, f"metadata source '{spec.name}'", READABLE_NAMED)
            if spec.type == "csv":
                return load_csv(spec.name, path, spec.delimiter, within=self.readable)
            return load_excel(spec.name, path, spec.sheet, within=self.readable)
        if not spec.schema_name or not spec.table:
            raise ConfigError(f"metadata source '{spec.name}': a labkey source needs schema and table")
        overrides = {k: getattr(spec, k) for k in ("host", "container", "context", "use_ssl")}
        if self.labkey is not None:
            connection = self.labkey.overridden(overrides)
        else:
            connection = LabKeyConnection.from_section(overrides, f"metadata source '{spec.name}'")
        if connection not in self._clients:
            self._clients[connection] = self.make_client(connection)
        filters = [f.model_dump() for f in spec.filters]
        return load_labkey(spec.name, self._clients[connection], spec.schema_name, spec.table, spec.columns,
                           filters, needed)

    def match(self, variables: Mapping[str, str]) -> MetadataResult:
        """Match one file; `metadata_missing` stops the file only when metadata is required."""
        if not self.rules:
            return MetadataResult({}, {})
        tables = self.tables()
        found = match(variables, self.rules, self.default_key_template, self.render, tables)
        if found.reason is Reason.METADATA_MISSING and not self.required:
            return MetadataResult({}, {}, None, found.detail)
        return MetadataResult(found.rows, derive(variables, found.rows, self.derive_rules, tables),
                              found.reason, found.detail)
