"""The `sync.yml` model: every key of spec/sync-yml.md, validated before anything runs.

Errors are one line naming the file, the key path and the line: `sync.yml:7: fields.Name: ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from dropsync_dagster.core.syncyml.regex import BoundedPattern, compile_bounded
from dropsync_dagster.core.syncyml.locations import describe, dotted, key_lines, line_of
from dropsync_dagster.core.syncyml.reader import parse_yaml, read_config_text
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.plan.templating import FIELD_FUNCTIONS, placeholders

CONFIG_NAME = "sync.yml"
MAX_COMPLETION_FILES = 16
MAX_COMPLETION_NAME_BYTES = 255  # one file name (NAME_MAX)
PATH_BUILTINS = frozenset({"run", "hash", "today"})
FIELD_BUILTINS = PATH_BUILTINS | {"uploaded_filename", "target_path"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LabKeySection(_Model):
    """Connection to a LabKey Server; credentials come from the deployment, never from here."""

    host: str
    container: str
    context: str | None = None
    use_ssl: bool = True
    schema_name: str | None = Field(default=None, alias="schema")
    table: str | None = None

    @field_validator("schema_name")
    @classmethod
    def _schema_has_no_dots(cls, value: str | None) -> str | None:
        if value is not None and "." in value:
            raise ValueError("schema name only, no dots")
        return value


class SourceFilter(_Model):
    """One filter of a LabKey metadata source."""

    field: str
    type: str = "eq"
    value: Any = None


class MetadataSource(_Model):
    """A table of metadata rows: a LabKey query, an Excel sheet or a CSV file."""

    name: str
    type: Literal["labkey", "excel", "csv"]
    host: str | None = None
    container: str | None = None
    context: str | None = None
    use_ssl: bool | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    table: str | None = None
    columns: list[str] | None = None
    filters: list[SourceFilter] = []
    path: str | None = None
    sheet: str | None = None
    delimiter: str = ","

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in '\r\n"\0':
            raise ValueError("a delimiter is one character, not a quote, newline or NUL")
        return value


class MatchRule(_Model):
    """Search `field` of `source` for the key rendered from `key_template`."""

    source: str
    field: str
    key_template: str | None = None


class MetadataMatch(_Model):
    """Ordered match rules; the first that finds a row wins."""

    key_template: str | None = None
    search: list[MatchRule] = []


class DeriveRule(_Model):
    """New variables from the named groups of `regex` applied to a matched row's field."""

    source: str
    field: str
    regex: str


class Replacement(_Model):
    """Plain substring replacement on a variable or a rendered field."""

    target: Literal["var", "field"]
    name: str
    replace: str
    with_: str = Field(alias="with")


class Replacements(_Model):
    """Replacements before matching and before write-back."""

    before_match: list[Replacement] = []
    before_writeback: list[Replacement] = []


class PresenceCheck(_Model):
    """Find an existing LabKey row by the rendered value of one of `fields`."""

    field: str
    match: Literal["equal", "contains"] = "contains"


class Writeback(_Model):
    """Write-back policy."""

    skip_creates: bool = False


class ArchiveSection(_Model):
    """Per-drop archive options; the deployment may forbid turning encryption off."""

    enabled: bool = True
    tar_exclusions: list[str] = []


def _completion_name(name: str) -> str:
    """A completion file is named, never pathed: it sits directly in the drop folder."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{name!r} is not a plain file name (no path separators, '..' or NUL)")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_COMPLETION_NAME_BYTES:
        raise ValueError(f"a file name is at most {MAX_COMPLETION_NAME_BYTES} bytes")
    if name == CONFIG_NAME:
        raise ValueError(f"{CONFIG_NAME} cannot mark its own drop complete")
    return name


class SyncConfig(_Model):
    """A drop's `sync.yml`."""

    drop_filename_filter: str
    drop_filename_regex: str
    repository_folder: str
    repository_filename: str
    processed_folder: str
    processed_rebase_from: str | None = None
    filename_sequence: Literal["run", "hash"] | None = None
    date_format: str = "%Y-%m-%d %H:%M:%S"
    labkey: LabKeySection | None = None
    fields: dict[str, Any] = {}
    field_parameters: dict[str, Literal["file_list", "file_list_aggregator"]] = {}
    presence_check: PresenceCheck | None = None
    writeback: Writeback = Writeback()
    lookups: dict[str, dict[str, str]] = {}
    metadata_sources: list[MetadataSource] = []
    metadata_match: MetadataMatch | None = None
    metadata_required: bool = False
    metadata_derive: list[DeriveRule] = []
    replacements: Replacements = Replacements()
    archive: ArchiveSection = ArchiveSection()
    # Files that must sit in the drop folder before it is ready (besides the deployment's sentinels).
    completion_files: list[Annotated[str, AfterValidator(_completion_name)]] = Field(
        default=[], max_length=MAX_COMPLETION_FILES)

    @field_validator("lookups", mode="before")
    @classmethod
    def _lookup_values_are_text(cls, value: Any) -> Any:
        # YAML turns `1: one` into an int key; lookups compare captured text.
        # Anything that is not a table (or a None value) is left for pydantic to reject with file:line.
        if isinstance(value, dict):
            return {
                str(var): {str(k): v if v is None else str(v) for k, v in table.items()}
                if isinstance(table, dict) else ({} if table is None else table)
                for var, table in value.items()
            }
        return value

    @property
    def regex(self) -> BoundedPattern:
        """The compiled `drop_filename_regex` (validated at load), each match time-bounded."""
        return compile_bounded(self.drop_filename_regex, "drop_filename_regex")

    def file_list_field(self) -> str | None:
        """The field with role `file_list`, if any."""
        return next((f for f, r in self.field_parameters.items() if r == "file_list"), None)

    def aggregator_field(self) -> str | None:
        """The field with role `file_list_aggregator`, if any."""
        return next(
            (f for f, r in self.field_parameters.items() if r == "file_list_aggregator"), None
        )


def load_config(path: Path) -> SyncConfig:
    """Load and validate a `sync.yml`; any problem is one ConfigError line with file:line.
    Bounded (see config_yaml.py): a regular file of at most 1 MiB, aliases budgeted, no duplicate keys."""
    data, root = parse_yaml(path, read_config_text(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys, got {type(data).__name__}")
    lines = key_lines(root)
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(path, exc, lines, SyncConfig)) from exc
    _check_semantics(path, config, lines)
    return config


def _check_semantics(path: Path, config: SyncConfig, lines: dict[tuple, int]) -> None:
    """Checks pydantic cannot express: regexes compile, every placeholder has a provider."""

    def where(loc: tuple) -> str:
        return f"{path}:{line_of(lines, loc)}: {dotted(loc)}"

    def fail(loc: tuple, message: str) -> NoReturn:
        raise ConfigError(f"{where(loc)}: {message}")

    for loc, text in _folders_and_templates(config):
        if "\0" in text:  # it can never become a path (lookup values are data: they hold their file only)
            fail(loc, "a NUL byte is not allowed")
    variables = _groups(where(("drop_filename_regex",)), config.drop_filename_regex)
    for i, rule in enumerate(config.metadata_derive):
        variables |= _groups(where(("metadata_derive", i, "regex")), rule.regex)
    sources = {s.name for s in config.metadata_sources}
    for i, rule in enumerate([*(config.metadata_match.search if config.metadata_match else []), *config.metadata_derive]):
        if rule.source not in sources:
            key = "metadata_match" if i < len(config.metadata_match.search if config.metadata_match else []) else "metadata_derive"
            fail((key,), f"unknown metadata source '{rule.source}' (known: {', '.join(sorted(sources)) or 'none'})")

    def check_template(loc: tuple, template: str, builtins: frozenset[str]) -> None:
        for ph in placeholders(template):
            if ph.source is not None:
                if ph.source not in sources:
                    fail(loc, f"placeholder <{ph.text}> names no metadata source (known: {', '.join(sorted(sources)) or 'none'})")
            elif ph.name not in variables and ph.name not in builtins:
                known = sorted(variables | builtins)
                fail(loc, f"placeholder <{ph.name}> has no provider (regex groups, derive rules and built-ins: {', '.join(known)})")
            if ph.name == "run" and config.filename_sequence != "run":
                fail(loc, "placeholder <run> needs 'filename_sequence: run'")
            if ph.name == "hash" and config.filename_sequence != "hash":
                fail(loc, "placeholder <hash> needs 'filename_sequence: hash'")

    check_template(("repository_filename",), config.repository_filename, PATH_BUILTINS)
    for name, value in config.fields.items():
        if isinstance(value, str) and value.strip() not in FIELD_FUNCTIONS:
            check_template(("fields", name), value, FIELD_BUILTINS)
    if config.metadata_match is not None:
        for i, rule in enumerate(config.metadata_match.search):
            template = rule.key_template or config.metadata_match.key_template
            if template is None:
                fail(("metadata_match", "search", i), "no key_template here or in metadata_match")
            check_template(("metadata_match", "search", i), template, frozenset({"today"}))
    if config.presence_check is not None and config.presence_check.field not in config.fields:
        fail(("presence_check", "field"), f"'{config.presence_check.field}' is not a key of fields")
    if (config.fields or config.presence_check) and config.labkey is None:
        fail(("fields",), "fields and presence checks need a 'labkey' section")
    if config.labkey is not None and config.fields and not (config.labkey.schema_name and config.labkey.table):
        fail(("labkey",), "write-back needs labkey.schema and labkey.table")
    for i, source in enumerate(config.metadata_sources):
        if source.type == "labkey" and not (source.schema_name and source.table):
            fail(("metadata_sources", i), "a labkey source needs schema and table")
        if source.type == "labkey" and config.labkey is None and not (source.host and source.container):
            fail(("metadata_sources", i), "a labkey source needs host and container (or a top-level labkey section)")
        if source.type in ("csv", "excel") and not source.path:
            fail(("metadata_sources", i), f"a {source.type} source needs a path")


def _folders_and_templates(config: SyncConfig) -> Iterator[tuple[tuple, str]]:
    """Every folder and template of a config, with its location."""
    for key in ("repository_folder", "processed_folder", "processed_rebase_from", "repository_filename"):
        yield (key,), getattr(config, key) or ""
    for i, source in enumerate(config.metadata_sources):
        yield ("metadata_sources", i, "path"), source.path or ""
    for name, value in config.fields.items():
        yield ("fields", name), value if isinstance(value, str) else ""
    if config.metadata_match is not None:
        yield ("metadata_match", "key_template"), config.metadata_match.key_template or ""
        for i, rule in enumerate(config.metadata_match.search):
            yield ("metadata_match", "search", i, "key_template"), rule.key_template or ""


def _groups(where: str, pattern: str) -> set[str]:
    """The named groups of a sync.yml regex; a bad or oversized one, or a group shadowing a
    built-in placeholder, is a ConfigError starting with `where` (file:line: key)."""
    groups = set(compile_bounded(pattern, where).groupindex)
    clash = sorted(groups & PATH_BUILTINS)
    if clash:
        raise ConfigError(f"{where}: group name <{clash[0]}> is a built-in placeholder "
                          "(run, hash, today); rename the group")
    return groups
