"""core.metadata: CSV, Excel and LabKey sources (the LabKey test server through the real client),
first-rule-wins matching, ambiguous and missing rows, derived variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from dropsync_dagster.core.config import DeriveRule, MatchRule, MetadataSource, load_config
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey import LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey_transport import RetryPolicy
from dropsync_dagster.core.metadata import DropMetadata, derive, match
from dropsync_dagster.core.metadata_sources import load_csv, load_excel
from dropsync_dagster.core.model import Reason
from dropsync_dagster.core.templating import render
from dropsync_dagster_tests.fixtures.labkey import LABKEY_CONTAINER
from dropsync_dagster_tests.labkey_server import LabKeyTestServer

FAST = RetryPolicy(attempts=2, base_delay=0.01, timeout=5)


def fast_client(connection: LabKeyConnection) -> LabKeyClient:
    return LabKeyClient(connection, retry=FAST)


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, records in sheets.items():
        sheet = book.create_sheet(title)
        for record in records:
            sheet.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "barcodes.csv").write_text(
        "\ufeffPrefix;Barcode;Patient\n"
        " ABC_DEFGHI_S1_L001 ;BC01;MTR-A-001_V01\n"
        "ABC_DEFGHI_S2_L001;BC02;MTR-A-002_V02\n"
        ";;\n"
        "DUP_PREFIX;BC03;x\n"
        "DUP_PREFIX;BC04;y\n", encoding="utf-8")
    write_xlsx(tmp_path / "manifests" / "samples.xlsx", {
        "Other": [["Prefix", "Lane"], ["ignored", 1]],
        "Sheet1": [["Prefix", "Lane", "Sample Id"], ["ABC_DEFGHI_SEQ_ABCDE", 12, "S-1"], [None, None, None],
                   ["XYZ_QWERTY_SEQ_ZZZZZ", 3.0, "S-2"]],
    })
    return tmp_path


def test_csv_source(drop: Path) -> None:
    table = load_csv("barcodes", drop / "manifests" / "barcodes.csv", ";")
    assert [c.name for c in table.columns] == ["Prefix", "Barcode", "Patient"]  # BOM stripped
    assert len(table.rows) == 4  # the blank line is skipped
    assert [r["Barcode"] for r in table.lookup("prefix", "ABC_DEFGHI_S1_L001")] == ["BC01"]  # cell trimmed
    assert table.lookup("Prefix", "abc_defghi_s1_l001") == []  # values match exactly
    with pytest.raises(ConfigError, match="file not found"):
        load_csv("barcodes", drop / "nope.csv")


def test_excel_source(drop: Path) -> None:
    path = drop / "manifests" / "samples.xlsx"
    table = load_excel("samples", path, "Sheet1")
    assert [r["Sample Id"] for r in table.lookup("Prefix", "ABC_DEFGHI_SEQ_ABCDE")] == ["S-1"]
    assert [r["Sample Id"] for r in table.lookup("lane", "3")] == ["S-2"]  # 3.0 from the sheet is "3"
    assert table.lookup("sample_id", "S-2")[0]["Lane"] == 3
    with pytest.raises(ConfigError, match=r"has no sheet 'Sheet9' \(sheets: Other, Sheet1\)"):
        load_excel("samples", path, "Sheet9")
    (drop / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(ConfigError, match="is not a readable .xlsx workbook"):
        load_excel("samples", drop / "bad.xlsx")


def test_excel_default_sheet_is_the_active_one(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "one.xlsx", {"Only": [["Key", "Value"], ["k1", "v1"]]})
    assert load_excel("one", path).lookup("Key", "k1") == [{"Key": "k1", "Value": "v1"}]


def csv_and_excel(drop: Path, rules: list[MatchRule], required: bool = True,
                  derive_rules: tuple[DeriveRule, ...] = ()) -> DropMetadata:
    sources = [MetadataSource(name="barcodes", type="csv", path="manifests/barcodes.csv", delimiter=";"),
               MetadataSource(name="samples", type="excel", path=str(drop / "manifests" / "samples.xlsx"),
                              sheet="Sheet1")]
    return DropMetadata(sources, rules, "<prefix>", list(derive_rules), required, drop, render)


def test_first_rule_that_finds_a_row_wins(drop: Path) -> None:
    meta = csv_and_excel(drop, [MatchRule(source="barcodes", field="Prefix"),
                                MatchRule(source="samples", field="Prefix", key_template="<lib>_<seq>")])
    first = meta.match({"prefix": "ABC_DEFGHI_S1_L001", "lib": "ABC_DEFGHI", "seq": "SEQ_ABCDE"})
    assert first.reason is None and first.rows["barcodes"]["Barcode"] == "BC01" and "samples" not in first.rows
    second = meta.match({"prefix": "NOT_THERE", "lib": "XYZ_QWERTY", "seq": "SEQ_ZZZZZ"})
    assert second.reason is None and second.rows == {"samples": {"Prefix": "XYZ_QWERTY_SEQ_ZZZZZ", "Lane": 3,
                                                                  "Sample Id": "S-2"}}


def test_ambiguous_and_missing(drop: Path) -> None:
    rules = [MatchRule(source="barcodes", field="Prefix"), MatchRule(source="samples", field="Prefix", key_template="<lib>_<seq>")]
    meta = csv_and_excel(drop, rules)
    ambiguous = meta.match({"prefix": "DUP_PREFIX", "lib": "XYZ_QWERTY", "seq": "SEQ_ZZZZZ"})
    # never a silent pick, and no falling through to a later rule that would match
    assert ambiguous.reason is Reason.METADATA_AMBIGUOUS and ambiguous.rows == {}
    assert "2 rows of barcodes have Prefix = 'DUP_PREFIX'" in ambiguous.detail
    missing = meta.match({"prefix": "NONE", "lib": "NO", "seq": "NE"})
    assert missing.reason is Reason.METADATA_MISSING and "barcodes.Prefix = 'NONE' or samples.Prefix = 'NO_NE'" in missing.detail
    optional = csv_and_excel(drop, rules, required=False).match({"prefix": "NONE", "lib": "NO", "seq": "NE"})
    assert optional.reason is None and optional.rows == {}
    plain = match({"prefix": "NONE"}, rules[:1], "<prefix>", render, meta.tables())
    assert plain.reason is Reason.METADATA_MISSING  # the function leaves metadata_required to the caller


def test_derive_never_overwrites(drop: Path) -> None:
    rules = [DeriveRule(source="barcodes", field="Patient", regex=r"^(?P<patient_id>MTR-[A-Z]-\d{3})_(?P<visit>V\d{2})"),
             DeriveRule(source="barcodes", field="Barcode", regex=r"(?P<patient_id>BC)(?P<barcode_no>\d+)"),
             DeriveRule(source="samples", field="Sample Id", regex=r"(?P<sample>S-\d)")]
    meta = csv_and_excel(drop, [MatchRule(source="barcodes", field="Prefix")], derive_rules=tuple(rules))
    found = meta.match({"prefix": "ABC_DEFGHI_S1_L001", "visit": "V99"})
    # visit was captured, patient_id came from the first rule, samples did not match this file
    assert found.derived == {"patient_id": "MTR-A-001", "barcode_no": "01"}
    assert derive({"x": "1"}, {}, rules, meta.tables()) == {}


def test_unknown_field_or_source_is_a_config_error(drop: Path) -> None:
    meta = csv_and_excel(drop, [MatchRule(source="barcodes", field="Sample")])
    with pytest.raises(ConfigError, match="field 'Sample' matches no column of metadata source 'barcodes'; its columns are: Prefix, Barcode, Patient"):
        meta.match({"prefix": "x"})
    with pytest.raises(ConfigError, match="unknown source 'lims'"):
        csv_and_excel(drop, [MatchRule(source="lims", field="Prefix")]).match({"prefix": "x"})


def test_labkey_source_loaded_once(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any], drop: Path) -> None:
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [
        {"Name": "MTR-A-001_V01_x", "Uploaded_Filename_Prefix": f"P{i:03d}", "Path_To_Synced_Data": "/raw/a"}
        for i in range(50)] + [{"Name": "filtered out", "Uploaded_Filename_Prefix": "P000", "Path_To_Synced_Data": "/x"}])
    source = MetadataSource(name="lk", type="labkey", schema="exp", table="data", columns=["Name"],
                            filters=[{"field": "Path To Synced Data", "type": "contains", "value": "/raw/"}])
    meta = DropMetadata([source], [MatchRule(source="lk", field="Uploaded Filename Prefix")], "<prefix>",
                        [DeriveRule(source="lk", field="Name", regex=r"^(?P<patient_id>MTR-[A-Z]-\d{3})")],
                        True, drop, render, LabKeyConnection.from_section(labkey_section), make_client=fast_client)
    labkey_env.reset_counters()
    results = [meta.match({"prefix": f"P{i:03d}"}) for i in range(60)]
    assert labkey_env.count("selectRows") == 2  # the columns once, the rows once, for 60 files
    assert [r.reason for r in results].count(Reason.METADATA_MISSING) == 10
    assert results[0].rows["lk"]["Uploaded_Filename_Prefix"] == "P000"  # the filter kept one P000 row
    assert results[0].derived == {"patient_id": "MTR-A-001"}
    assert set(results[0].rows["lk"]) == {"RowId", "Name", "Uploaded_Filename_Prefix"}


def test_labkey_source_with_its_own_container(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any],
                                              drop: Path) -> None:
    labkey_env.create_table("Other Project/Samples", "lists", "Samples", ["SampleId", "Prefix"], key="Key")
    labkey_env.insert("Other Project/Samples", "lists", "Samples", [{"SampleId": "S9", "Prefix": "P1"}])
    sources = [MetadataSource(name="lims", type="labkey", schema="lists", table="Samples",
                              container="Other Project/Samples")]
    meta = DropMetadata(sources, [MatchRule(source="lims", field="prefix")], "<prefix>", [], True, drop, render,
                        LabKeyConnection.from_section(labkey_section), make_client=fast_client)
    assert meta.match({"prefix": "P1"}).rows["lims"]["SampleId"] == "S9"


def test_from_loaded_sync_yml(drop: Path) -> None:
    (drop / "sync.yml").write_text(
        'drop_filename_filter: "**/*.fastq.gz"\n'
        'drop_filename_regex: "(?P<prefix>[A-Z_0-9]+)_R1"\n'
        "repository_folder: repo\n"
        "repository_filename: <prefix>/<barcodes.Barcode>.fastq.gz\n"
        "processed_folder: processed\n"
        "metadata_sources:\n"
        "  - {name: barcodes, type: csv, path: manifests/barcodes.csv, delimiter: ';'}\n"
        "metadata_match:\n"
        "  key_template: <prefix>\n"
        "  search: [{source: barcodes, field: Prefix}]\n"
        "metadata_required: true\n")
    meta = DropMetadata.from_config(load_config(drop / "sync.yml"), drop, render)
    assert meta.match({"prefix": "ABC_DEFGHI_S2_L001"}).rows["barcodes"]["Barcode"] == "BC02"


def test_from_loaded_sync_yml_with_labkey(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any],
                                          drop: Path) -> None:
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "N1", "Uploaded_Filename_Prefix": "P1"}])
    (drop / "sync.yml").write_text(
        'drop_filename_filter: "**/*.fastq.gz"\n'
        'drop_filename_regex: "(?P<prefix>[A-Z_0-9]+)_R1"\n'
        "repository_folder: repo\n"
        "repository_filename: <prefix>/<lk.Name>.fastq.gz\n"
        "processed_folder: processed\n"
        f"labkey: {{host: '{labkey_section['host']}', container: '{LABKEY_CONTAINER}', context: labkey,\n"
        "         use_ssl: false, schema: exp, table: data}\n"
        "metadata_sources:\n"
        "  - {name: lk, type: labkey, schema: exp, table: data, columns: [Name]}\n"
        "metadata_match:\n"
        "  key_template: <prefix>\n"
        "  search: [{source: lk, field: Uploaded_Filename_Prefix}]\n")
    meta = DropMetadata.from_config(load_config(drop / "sync.yml"), drop, render, make_client=fast_client)
    assert meta.labkey is not None and meta.labkey.schema == "exp" and meta.labkey.use_ssl is False
    assert meta.match({"prefix": "P1"}).rows["lk"]["Name"] == "N1"
