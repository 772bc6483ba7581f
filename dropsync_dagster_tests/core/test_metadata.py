"""core.metadata: CSV, Excel and LabKey sources (the LabKey test server through the real client),
first-rule-wins matching, ambiguous and missing rows, derived variables."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from dropsync_dagster.core.syncyml.schema import DeriveRule, MatchRule, MetadataSource, load_config
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey.connection import LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey.transport import RetryPolicy
from dropsync_dagster.core.plan.matching import DropMetadata, derive, match
from dropsync_dagster.core.plan import metadata_sources
from dropsync_dagster.core.labkey.planning import plan_drop
from dropsync_dagster.core.plan.metadata_sources import MAX_COLUMNS, load_csv, load_excel
from dropsync_dagster.core.model import Reason
from dropsync_dagster.core.plan.templating import render
from dropsync_dagster_tests.support.drops import make_drop
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

FAST = RetryPolicy(attempts=2, base_delay=0.01, timeout=5)


def fast_client(connection: LabKeyConnection) -> LabKeyClient:
    return LabKeyClient(connection, api_key=LABKEY_API_KEY, retry=FAST)


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


# --- metadata sources are confined and bounded (issue 10 item 4) ---

def csv_source_config(drop: Path, path: str | Path, template: str = "<prefix>/<s.Barcode>.fastq.gz") -> Path:
    (drop / "sync.yml").write_text(
        'drop_filename_filter: "**/*.fastq.gz"\n'
        'drop_filename_regex: "(?P<prefix>[A-Z_0-9]+)_R1"\n'
        "repository_folder: ../../repository\n"
        f"repository_filename: '{template}'\n"
        "processed_folder: ../../processed\n"
        f"metadata_sources: [{{name: s, type: csv, path: '{path}'}}]\n"
        "metadata_match: {key_template: <prefix>, search: [{source: s, field: Prefix}]}\n"
        "metadata_required: true\n")
    return drop / "sync.yml"


def loaded(drop: Path, readable: tuple[Path, ...] = ()) -> DropMetadata:
    """The drop's metadata, its sources loaded (as planning loads them on the first file)."""
    meta = DropMetadata.from_config(load_config(drop / "sync.yml"), drop, render, readable=readable)
    meta.tables()
    return meta


def test_a_source_outside_the_drop_and_roots_is_refused_unread(drop: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    outside.write_text("Prefix,Barcode\nP1,TOP-SECRET-VALUE\n")
    csv_source_config(drop, outside)
    with pytest.raises(ConfigError) as info:
        loaded(drop)
    message = str(info.value)
    assert message == (f"metadata source 's': {outside} is outside the drop folder, DROPSYNC_ALLOWED_ROOTS "
                       "and DROPSYNC_METADATA_ROOTS")
    (drop / "link.csv").symlink_to(outside)  # a link in the drop does not widen it
    csv_source_config(drop, "link.csv")
    with pytest.raises(ConfigError, match=f"{outside} is outside the drop folder"):
        loaded(drop)
    assert loaded(drop, readable=(outside.parent,)).match({"prefix": "P1"}).rows["s"]["Barcode"] == "TOP-SECRET-VALUE"


@pytest.mark.timeout(30)
def test_a_fifo_source_is_refused_without_waiting_for_a_writer(drop: Path) -> None:
    os.mkfifo(drop / "manifests" / "pipe.csv")
    csv_source_config(drop, "manifests/pipe.csv")
    with pytest.raises(ConfigError, match="manifests/pipe.csv: is a FIFO; a regular file is required"):
        loaded(drop)


@pytest.mark.timeout(60)
def test_a_csv_with_a_million_columns_is_refused_quickly(drop: Path) -> None:
    path = drop / "manifests" / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n")
    with pytest.raises(ConfigError, match=f"row 1 has 1000000 columns, more than the limit of {MAX_COLUMNS}"):
        load_csv("wide", path)


def test_rows_and_size_are_capped(drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = drop / "manifests" / "barcodes.csv"
    monkeypatch.setattr(metadata_sources, "MAX_ROWS", 3)
    with pytest.raises(ConfigError, match="has more than 3 rows"):
        load_csv("barcodes", path, ";")
    monkeypatch.setattr(metadata_sources, "METADATA_LIMIT", 10)
    with pytest.raises(ConfigError, match="more than the limit of 10 bytes"):
        load_csv("barcodes", path, ";")
    with pytest.raises(ConfigError, match="more than the limit of 10 bytes"):
        load_excel("samples", drop / "manifests" / "samples.xlsx")


def test_errors_never_echo_the_contents(drop: Path) -> None:
    path = drop / "manifests" / "secret.csv"
    path.write_text("Prefix,SECRET-HEADER,SECRET-HEADER\n")
    with pytest.raises(ConfigError) as info:
        load_csv("s", path)
    assert str(info.value) == f"metadata source 's': {path} repeats a header (columns 2, 3)"
    path.write_bytes(b"Prefix\nSECRET-\xff-VALUE\n")
    with pytest.raises(ConfigError) as info:
        load_csv("s", path)
    assert str(info.value) == f"metadata source 's': {path} is not UTF-8 text (at byte offset 14)"


@pytest.mark.parametrize("members", [{"a.txt": b"SECRET"}, {"[Content_Types].xml": b"SECRET<"},
                                     {"[Content_Types].xml": b"<x/>"}])
def test_a_zip_that_is_not_a_workbook_is_one_line(drop: Path, members: dict[str, bytes]) -> None:
    path = drop / "manifests" / "fake.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ConfigError) as info:
        load_excel("s", path)
    assert str(info.value) == f"metadata source 's': {path} is not a readable .xlsx workbook"


def test_a_workbook_that_unpacks_too_large_is_refused_unopened(drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata_sources, "UNPACKED_LIMIT", 1000)
    with pytest.raises(ConfigError, match="unpacks to more than 1000 bytes"):
        load_excel("samples", drop / "manifests" / "samples.xlsx")


def test_a_nul_byte_in_a_metadata_value_holds_the_file(drop: Path) -> None:
    base = drop.parent
    drops = make_drop(base, "run_nul")
    (drops.path / "m.csv").write_bytes(b"Prefix,Barcode\nABC_1,BC\x00x\n")
    (drops.path / "ABC_1_R1.fastq.gz").write_bytes(b"@r\nACGT\n+\nIIII\n")
    csv_source_config(drops.path, "m.csv")
    settings = drops.settings()
    plan = plan_drop(drops.folder(), load_config(drops.config_path), settings, LabKeyClient)
    (entry,) = plan.entries
    assert entry.reason is Reason.UNSAFE_PATH and entry.target is None


@pytest.mark.timeout(60, method="thread")
def test_a_catastrophic_derive_regex_is_a_configuration_error(drop: Path) -> None:
    table = load_csv("barcodes", drop / "manifests" / "barcodes.csv", ";")
    rows = {"barcodes": {"Patient": "a" * 60 + "b"}}
    rule = DeriveRule(source="barcodes", field="Patient", regex=r"(?P<x>(a|aa)+)$")
    with pytest.raises(ConfigError, match="metadata_derive regex on barcodes.Patient: matching took longer"):
        derive({}, rows, [rule], {"barcodes": table})


def test_a_folder_as_a_source_is_one_line(drop: Path) -> None:
    csv_source_config(drop, "manifests")
    with pytest.raises(ConfigError, match="manifests: is a folder; a regular file is required"):
        loaded(drop)
