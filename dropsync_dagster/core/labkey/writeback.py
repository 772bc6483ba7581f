"""Write-back rows: each presence key's LabKey row, built from `fields` and the frozen plan.

Per file (spec "Order of operations", step 6): `replacements.before_writeback` on variables
(target `var`) -> render `fields` -> `replacements.before_writeback` on the rendered row (target
`field`) -> the auto-filled facts (target path, uploaded name, MD5), which replacements never
alter, since the target path is what finds the row again. `now()` is the plan's `created_at`
and `drop_file_mtime()` the mtime seen at planning, both in UTC with `date_format`: a row is a
pure function of the plan (and the copy's MD5), so the diff shown at planning is what is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dropsync_dagster.core.syncyml.schema import SyncConfig
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.columns import normalize_field
from dropsync_dagster.core.labkey.presence import PresenceMatch
from dropsync_dagster.core.plan.metadata_sources import key_text
from dropsync_dagster.core.model import PlanEntry
from dropsync_dagster.core.plan.templating import apply_replacements, render

# Fields filled with a fact about the file when present in `fields` (names compared normalised).
AUTO_TARGET, AUTO_UPLOADED, AUTO_CHECKSUM = "pathtosynceddata", "uploadedfilename", "checksum"
# What a `Checksum` field shows before the copy exists (the MD5 is computed by the checksum step).
PENDING_CHECKSUM = "(MD5 of the repository copy)"


@dataclass(frozen=True)
class PresenceRule:
    """How a file's row is found again: the field key, the match, and whether the value is the target."""

    field: str
    match: PresenceMatch
    by_target: bool  # default `file_list` check: the field CONTAINS the target path


def writeback_configured(config: SyncConfig) -> bool:
    """True when the drop writes LabKey rows: a `labkey` section and at least one field."""
    return config.labkey is not None and bool(config.fields)


def wants_checksum(config: SyncConfig) -> bool:
    """True when a field is filled with the MD5 of the repository copy."""
    return any(normalize_field(k) == AUTO_CHECKSUM for k in config.fields)


def field_key(config: SyncConfig, name: str) -> str:
    """The key of `fields` that `name` (from field_parameters) means; itself when none matches."""
    if name in config.fields:
        return name
    return next((k for k in config.fields if normalize_field(k) == normalize_field(name)), name)


def presence_rule(config: SyncConfig) -> PresenceRule:
    """`presence_check` if given, else the `file_list` field CONTAINS the target path."""
    if config.presence_check is not None:
        rule = PresenceRule(config.presence_check.field, PresenceMatch(config.presence_check.match), False)
        if normalize_field(rule.field) == AUTO_CHECKSUM:
            raise ConfigError("presence_check.field: the checksum is known only after copying; use another field")
        return rule
    file_list = config.file_list_field()
    if file_list is None:
        raise ConfigError("LabKey write-back needs a field with role 'file_list' in field_parameters, or a "
                          "presence_check, so that rows are found again instead of inserted twice")
    key = field_key(config, file_list)
    if key not in config.fields:
        raise ConfigError(f"field_parameters: the file_list field '{file_list}' must be a key of fields "
                          "(it holds the target path that finds the row again)")
    return PresenceRule(key, PresenceMatch.CONTAINS, True)


def aggregator_key(config: SyncConfig) -> str | None:
    """The `fields` key with role `file_list_aggregator`, if any."""
    name = config.aggregator_field()
    return None if name is None else field_key(config, name)


def format_time(moment: datetime, date_format: str) -> str:
    """`now()`/`drop_file_mtime()` text: UTC, so every host renders one plan the same way."""
    return moment.astimezone(timezone.utc).strftime(date_format)


@dataclass(frozen=True)
class RowBuilder:
    """Builds the rows of one plan: `now()` fixed to its `created_at`, the field roles resolved once."""

    config: SyncConfig
    now_text: str  # `now()`, rendered once
    facts: dict[str, str]  # field key -> AUTO_* fact it is filled with
    aggregator: str | None

    @classmethod
    def of(cls, config: SyncConfig, created_at: str) -> "RowBuilder":
        """The builder for a plan made from `config` at `created_at` (ISO)."""
        roles = (AUTO_TARGET, AUTO_UPLOADED, AUTO_CHECKSUM)
        facts = {k: normalize_field(k) for k in config.fields if normalize_field(k) in roles}
        now_text = format_time(datetime.fromisoformat(created_at), config.date_format)
        return cls(config, now_text, facts, aggregator_key(config))

    def file_row(self, entry: PlanEntry, md5: str | None) -> dict[str, Any]:
        """One file's row by field key; `md5` None (at planning) shows PENDING_CHECKSUM."""
        rules = self.config.replacements.before_writeback
        variables = apply_replacements(entry.variables, rules, "var")
        target = entry.target or ""
        uploaded = os.path.basename(entry.source)
        variables.update(uploaded_filename=uploaded, target_path=target)
        row: dict[str, Any] = {}
        for key, value in self.config.fields.items():
            if not isinstance(value, str):
                row[key] = value  # booleans, numbers and empty values are written as such
            elif value.strip() == "now()":
                row[key] = self.now_text
            elif value.strip() == "drop_file_mtime()":
                row[key] = format_time(datetime.fromtimestamp(entry.mtime, timezone.utc), self.config.date_format)
            else:
                row[key] = render(value, variables, entry.metadata)
        row = apply_replacements(row, rules, "field")
        facts = {AUTO_TARGET: target, AUTO_UPLOADED: uploaded, AUTO_CHECKSUM: md5 or PENDING_CHECKSUM}
        row.update({key: facts[role] for key, role in self.facts.items()})
        return row

    def group_row(self, entries: Sequence[PlanEntry], md5s: Mapping[str, str | None] | None = None,
                  existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The row of files sharing one presence key: the first file's row (by path), and the
        aggregator field listing every target (merged with what an existing row lists)."""
        members = sorted(entries, key=lambda e: e.relpath)
        row = self.file_row(members[0], (md5s or {}).get(members[0].relpath))
        if self.aggregator is not None:
            row[self.aggregator] = merged_lines((existing or {}).get(self.aggregator), [e.target or "" for e in members])
        return row


def presence_value(entry: PlanEntry, row: Mapping[str, Any], rule: PresenceRule) -> str:
    """The value that finds this file's row: its target path, or the rendered presence field."""
    return (entry.target or "") if rule.by_target else key_text(row.get(rule.field))


def merged_lines(existing: Any, targets: Sequence[str]) -> str:
    """An aggregator cell: the paths it already lists, then the new ones, one per line, no repeats."""
    lines = [line.strip() for line in str(existing or "").splitlines() if line.strip()]
    return "\n".join(dict.fromkeys([*lines, *targets]))


def holds_target(cell: Any, target: str) -> bool:
    """True when a line of `cell` ends with `target`: CONTAINS, without `/a.fastq` matching `/a.fastq.gz`."""
    return bool(target) and any(line.rstrip().endswith(target) for line in str(cell or "").splitlines())


def held_paths(cell: Any) -> Iterator[str]:
    """Every absolute path a cell holds in the sense of holds_target: each line's tail from each
    `/`, so rows are matched to targets by lookup instead of by testing every target."""
    for line in str(cell or "").splitlines():
        line = line.rstrip()
        start = line.find("/")
        while start != -1:
            yield line[start:]
            start = line.find("/", start + 1)


def same_value(old: Any, new: Any) -> bool:
    """Do a stored cell and a planned value mean the same? (1 == "1", True == "true", and dates
    compare as dates, since LabKey answers `yyyy-MM-dd HH:mm:ss.SSS`)."""
    a, b = key_text(old), key_text(new)
    if a == b:
        return True
    da, db = _as_datetime(a), _as_datetime(b)
    return da is not None and da == db


def _as_datetime(text: str) -> datetime | None:
    if len(text) < 10 or text[4] not in "-/" or text[7] not in "-/":
        return None
    try:
        return datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        return None  # not a date after all: compared as text
