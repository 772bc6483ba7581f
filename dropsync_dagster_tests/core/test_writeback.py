"""core.writeback: rows from fields (templates, functions, replacements, auto-filled facts),
aggregated rows, the presence rule, and how stored cells compare with planned values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from dropsync_dagster.core.syncyml.schema import SyncConfig
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.presence import PresenceMatch
from dropsync_dagster.core.model import PlanEntry
from dropsync_dagster.core.labkey.writeback import (
    PENDING_CHECKSUM,
    RowBuilder,
    held_paths,
    holds_target,
    merged_lines,
    presence_rule,
    presence_value,
    same_value,
    wants_checksum,
    writeback_configured,
)

CREATED = "2026-11-20T13:14:15.123456+00:00"
MTIME = datetime(2026, 11, 19, 8, 30, tzinfo=timezone.utc).timestamp()


def config(**overrides: Any) -> SyncConfig:
    base: dict[str, Any] = {
        "drop_filename_filter": "**/*.gz", "drop_filename_regex": "(?P<lib>[A-Z_]+)_(?P<read>R[12])",
        "repository_folder": "/repo", "repository_filename": "<lib>/<lib>_r<run>_<read>.gz",
        "processed_folder": "/done", "filename_sequence": "run",
        "labkey": {"host": "h", "container": "c", "schema": "exp", "table": "data"},
        "fields": {"Path_To_Synced_Data": None}, "field_parameters": {"Path_To_Synced_Data": "file_list"},
    }
    base.update(overrides)
    return SyncConfig.model_validate(base)


def entry(read: str = "R1", lib: str = "AB-C", **extra: Any) -> PlanEntry:
    rel = f"in/{lib}_{read}.gz"
    return PlanEntry(relpath=rel, source=f"/drop/{rel}", size=3, mtime=MTIME, matched=True,
                     variables={"lib": lib, "read": read, "run": "2", "today": "2026-11-20"},
                     target=f"/repo/{lib}/{lib}_r2_{read}.gz", target_relpath=f"{lib}/{lib}_r2_{read}.gz", **extra)


def test_fields_render_in_the_documented_order() -> None:
    cfg = config(
        date_format="%d.%m.%Y %H:%M",
        fields={"Name": "<lib>_r<run>", "Sample": "<lims.Sample Id>", "Synced": True, "Lane": 4, "Note": None,
                "When": "now()", "Uploaded": " drop_file_mtime() ", "Where": "<target_path>",
                "Original": "<uploaded_filename>", "Path To Synced Data": "ignored: a fact",
                "uploaded_file_name": "", "CheckSum": None},
        field_parameters={"Path To Synced Data": "file_list"},
        replacements={"before_writeback": [
            {"target": "var", "name": "lib", "replace": "-", "with": "."},
            {"target": "field", "name": "Name", "replace": ".", "with": "_"},
            {"target": "field", "name": "Path To Synced Data", "replace": "/", "with": "|"}]},
    )
    row = RowBuilder.of(cfg, CREATED).file_row(entry(metadata={"lims": {"Sample Id": "S-1"}}), "d41d8cd98f00b204e9800998ecf8427e")
    assert row == {
        "Name": "AB_C_r2", "Sample": "S-1", "Synced": True, "Lane": 4, "Note": None,
        "When": "20.11.2026 13:14", "Uploaded": "19.11.2026 08:30", "Where": "/repo/AB-C/AB-C_r2_R1.gz",
        "Original": "AB-C_R1.gz",
        "Path To Synced Data": "/repo/AB-C/AB-C_r2_R1.gz",  # facts are filled after replacements, untouched
        "uploaded_file_name": "AB-C_R1.gz", "CheckSum": "d41d8cd98f00b204e9800998ecf8427e",
    }
    assert RowBuilder.of(config(fields={"Checksum": None}), CREATED).file_row(entry(), None) == {"Checksum": PENDING_CHECKSUM}
    assert wants_checksum(cfg) and not wants_checksum(config())


def test_group_row_aggregates_targets_and_keeps_what_the_row_lists() -> None:
    cfg = config(fields={"Name": "<lib>", "Files": None, "Path_To_Synced_Data": None},
                 field_parameters={"Name": "file_list", "Files": "file_list_aggregator"},
                 presence_check={"field": "Name", "match": "equal"})
    r2, r1 = entry("R2"), entry("R1")
    row = RowBuilder.of(cfg, CREATED).group_row([r2, r1], existing={"Files": "/repo/old.gz\n/repo/AB-C/AB-C_r2_R2.gz\n"})
    assert row["Name"] == "AB-C" and row["Path_To_Synced_Data"] == r1.target  # the first file by path
    assert row["Files"] == f"/repo/old.gz\n{r2.target}\n{r1.target}"
    assert merged_lines(None, ["a", "a", "b"]) == "a\nb"


def test_presence_rule() -> None:
    rule = presence_rule(config())
    assert (rule.field, rule.match, rule.by_target) == ("Path_To_Synced_Data", PresenceMatch.CONTAINS, True)
    assert presence_value(entry(), {}, rule) == "/repo/AB-C/AB-C_r2_R1.gz"
    by_name = presence_rule(config(fields={"Name": "<lib>", "Path_To_Synced_Data": None},
                                   presence_check={"field": "Name", "match": "equal"}))
    assert (by_name.match, by_name.by_target) == (PresenceMatch.EQUAL, False)
    assert presence_value(entry(), {"Name": " AB-C "}, by_name) == "AB-C"
    # field_parameters may name a field by its caption
    assert presence_rule(config(field_parameters={"Path To Synced Data": "file_list"})).field == "Path_To_Synced_Data"
    with pytest.raises(ConfigError, match="needs a field with role 'file_list'"):
        presence_rule(config(field_parameters={}))
    with pytest.raises(ConfigError, match="file_list field 'Elsewhere' must be a key of fields"):
        presence_rule(config(field_parameters={"Elsewhere": "file_list"}))
    with pytest.raises(ConfigError, match="known only after copying"):
        presence_rule(config(fields={"Checksum": None}, presence_check={"field": "Checksum", "match": "equal"}))


def test_writeback_needs_labkey_and_fields() -> None:
    assert writeback_configured(config())
    assert not writeback_configured(config(fields={}, field_parameters={}))
    assert not writeback_configured(config(labkey=None, fields={}, field_parameters={}))


@pytest.mark.parametrize(("old", "new", "same"), [
    (1, "1", True), (7.0, "7", True), (True, True, True), (True, "true", True), (False, "true", False),
    (None, "", True), (None, "x", False), ("2026-11-20 13:14:15.000", "2026-11-20 13:14:15", True),
    ("2026-11-20 13:14:15.000", "2026-11-20 13:14:16", False), ("2026/11/20 00:00:00", "2026-11-20", True),
    ("a\nb", "a\nb", True), ("2026-ab-cd-x", "2026-ab-cd-y", False),
])
def test_same_value(old: Any, new: Any, same: bool) -> None:
    assert same_value(old, new) is same


def test_holds_target_is_line_exact_at_the_end() -> None:
    assert holds_target("/r/a.gz", "/r/a.gz")
    assert holds_target("file:///r/a.gz\n/r/b.gz ", "/r/b.gz")
    assert not holds_target("/r/a.gz.old", "/r/a.gz")
    assert not holds_target(None, "/r/a.gz") and not holds_target("anything", "")
    # held_paths finds exactly the absolute targets holds_target accepts, by lookup
    cell = "file:///r/a.gz\n/r/b.gz.old\n  /r/c d.gz  "
    assert list(held_paths(cell)) == ["///r/a.gz", "//r/a.gz", "/r/a.gz", "/a.gz", "/r/b.gz.old", "/b.gz.old",
                                      "/r/c d.gz", "/c d.gz"]
    for target in ("/r/a.gz", "/r/b.gz", "/r/c d.gz", "/a.gz"):
        assert (target in set(held_paths(cell))) is holds_target(cell, target)
