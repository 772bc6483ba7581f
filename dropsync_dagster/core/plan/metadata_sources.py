"""Metadata sources: a LabKey query, a CSV file or an Excel sheet, each loaded once into a
`MetadataTable` that is indexed, on first use, by each field a match rule looks up.

CSV and Excel files are untrusted: read once as a regular file of at most METADATA_LIMIT bytes
(bounded_read.py), at most MAX_COLUMNS columns, MAX_ROWS rows and MAX_CELLS cells; error lines
name the source, the file and a position, never a cell's text."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from dropsync_dagster.core.drops.small_files import read_regular
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.columns import Column, resolve_fields

if TYPE_CHECKING:
    from dropsync_dagster.core.labkey.connection import LabKeyClient


def key_text(value: Any) -> str:
    """A cell as matching sees it: trimmed text; 12.0 from a spreadsheet is `12`, None is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time(0):
        return value.date().isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).strip()


@dataclass
class MetadataTable:
    """The rows of one source (keyed by column name or header) and lazily built per-field indexes."""

    name: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    _indexes: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict, repr=False)

    def column(self, field_key: str) -> str:
        """The column a rule's field names (name or caption, case/punctuation-insensitive)."""
        return resolve_fields([field_key], self.columns, f"metadata source '{self.name}'")[field_key]

    def lookup(self, field_key: str, key: str) -> list[dict[str, Any]]:
        """Rows whose `field_key` equals `key` after trimming both (exact, case-sensitive)."""
        column = self.column(field_key)
        index = self._indexes.get(column)
        if index is None:
            index = {}
            for row in self.rows:
                text = key_text(row.get(column))
                if text:
                    index.setdefault(text, []).append(row)
            self._indexes[column] = index
        return index.get(key.strip(), [])


METADATA_LIMIT = 64 << 20  # bytes of a CSV or .xlsx file
UNPACKED_LIMIT = 256 << 20  # bytes of an .xlsx once unzipped (a zip bomb is refused unopened)
MAX_COLUMNS = 4096
MAX_ROWS = 1_000_000
MAX_CELLS = 20_000_000


def _headers(cells: Sequence[Any], source: str, path: Path) -> list[str | None]:
    headers = [key_text(c) or None for c in cells]
    named = [h for h in headers if h]
    if not named:
        raise ConfigError(f"metadata source '{source}': {path} has no header row")
    counts = Counter(named)
    repeated = [i + 1 for i, h in enumerate(headers) if h and counts[h] > 1]
    if repeated:
        columns = ", ".join(map(str, repeated[:5]))
        raise ConfigError(f"metadata source '{source}': {path} repeats a header (columns {columns})")
    return headers


def _bounded(records: Iterable[Sequence[Any]], source: str, path: Path) -> list[Sequence[Any]]:
    """All records, refused past MAX_COLUMNS, MAX_ROWS or MAX_CELLS (checked as they stream in)."""
    out: list[Sequence[Any]] = []
    cells = 0
    for record in records:
        cells += len(record)
        if len(record) > MAX_COLUMNS:
            raise ConfigError(f"metadata source '{source}': {path} row {len(out) + 1} has {len(record)} "
                              f"columns, more than the limit of {MAX_COLUMNS}")
        if len(out) >= MAX_ROWS or cells > MAX_CELLS:
            raise ConfigError(f"metadata source '{source}': {path} has more than {MAX_ROWS} rows "
                              f"or {MAX_CELLS} cells")
        out.append(record)
    return out


def _table(source: str, headers: list[str | None], records: Sequence[Sequence[Any]]) -> MetadataTable:
    names = [h for h in headers if h]
    rows = []
    for record in records:
        if all(key_text(v) == "" for v in record):
            continue  # blank lines between blocks are common in hand-kept manifests
        padded = list(record) + [None] * (len(headers) - len(record))
        rows.append({h: v for h, v in zip(headers, padded) if h})
    return MetadataTable(source, tuple(Column(n, n) for n in names), rows)


def load_csv(source: str, path: Path, delimiter: str = ",", within: Sequence[Path] = ()) -> MetadataTable:
    """Load a CSV file: header row first, UTF-8 (a BOM as Excel writes it is fine).
    `within`: folders the opened file must lie in (see bounded_read.read_regular)."""
    data = read_regular(path, METADATA_LIMIT, f"metadata source '{source}': {path}", within)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"metadata source '{source}': {path} is not UTF-8 text (at byte offset {exc.start})") from None
    try:
        records = _bounded(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), source, path)
    except csv.Error as exc:  # csv's messages name a limit or a line, never the text
        raise ConfigError(f"metadata source '{source}': cannot read {path}: {exc}") from None
    if not records:
        raise ConfigError(f"metadata source '{source}': {path} is empty")
    return _table(source, _headers(records[0], source, path), records[1:])


def load_excel(source: str, path: Path, sheet: str | None = None, within: Sequence[Path] = ()) -> MetadataTable:
    """Load one sheet of an .xlsx workbook (the active one unless named): header row first."""
    data = read_regular(path, METADATA_LIMIT, f"metadata source '{source}': {path}", within)
    not_a_workbook = ConfigError(f"metadata source '{source}': {path} is not a readable .xlsx workbook")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise not_a_workbook from None
    if unpacked > UNPACKED_LIMIT:
        raise ConfigError(f"metadata source '{source}': {path} unpacks to more than {UNPACKED_LIMIT} bytes")
    import openpyxl  # here: ~0.13 CPU s of every run's start-up, needed only by drops with an Excel source

    try:
        import openpyxl  # only for Excel sources: it is slow to import

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises KeyError, ValueError, TypeError, XML errors... on a malformed zip
        raise not_a_workbook from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ConfigError(f"metadata source '{source}': {path} has no sheet '{sheet}' "
                              f"(sheets: {', '.join(book.sheetnames)})")
        try:
            rows = (book[sheet] if sheet is not None else book.active).iter_rows(values_only=True)
            records = _bounded(rows, source, path)
        except ConfigError:
            raise
        except Exception:  # a malformed sheet inside a valid zip fails while its rows stream in
            raise not_a_workbook from None
    finally:
        book.close()  # read-only workbooks keep the file open until closed
    if not records:
        raise ConfigError(f"metadata source '{source}': sheet '{sheet or 'active'}' of {path} is empty")
    return _table(source, _headers(records[0], source, path), records[1:])


def load_labkey(source: str, client: LabKeyClient, schema: str, table: str, columns: Sequence[str] | None,
                filters: Sequence[Mapping[str, Any]], needed: Sequence[str] = ()) -> MetadataTable:
    """Select a LabKey query's rows (all pages); `needed` fields are fetched even if `columns` omits them."""
    info = client.table_info(schema, table)
    wanted = None if columns is None else [*columns, *needed]
    rows = client.select_rows(schema, table, columns=wanted, filters=filters)
    if wanted is None:
        loaded = info.columns
    else:
        names = set(info.resolve(wanted).values()) | ({info.key} if info.key else set())
        loaded = tuple(c for c in info.columns if c.name in names)
    return MetadataTable(source, loaded, rows)
