"""A sync.yml using every key of spec/sync-yml.md, end to end against the LabKey test server (real
`labkey` client): through the Dagster job and through `dropsync plan` / `dropsync sync` as
subprocesses. Plan diffs are shown, rows updated/inserted exactly once, originals moved only
for recorded files, and a second run changes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import openpyxl

from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, SEED_REGEX, fastq_content, fastq_relpath, make_drop
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER, LABKEY_CONTEXT
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer
from dropsync_dagster_tests.support.labkey_server_values import ColumnDef

META_CONTAINER = "LOOP Intercept/Meta Data"
FAST = LabKeyResource(api_key=LABKEY_API_KEY, attempts=3, retry_delay=0.01, timeout=5)
MTIME = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)
DERIVE = r"^(?P<patient>MTR-[A-Z]-\d{3})_(?P<visit>V\d{2})"
# file -> where its metadata comes from and its repository target
FILES = {
    fastq_relpath(read=1): "scRNA/raw/BTKi/MTR.A.001/V01/ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz",  # LabKey source
    fastq_relpath(read=2): "scRNA/raw/BTKi/MTR.A.001/V01/ABC_DEFGHI_SEQ_ABCDE_r1__R2_001.fastq.gz",  # same sample
    fastq_relpath(lib="XYZ_QWERTY", seq="SEQ_ZZZZZ"): "scRNA/raw/BTKi/MTR.B.002/V02/XYZ_QWERTY_SEQ_ZZZZZ_r1__R1_001.fastq.gz",  # Excel
    fastq_relpath(lib="DEF_GHIJKL", sample=2, lane=2): "scRNA/raw/BTKi/MTR.C.003/V01/DEF_GHIJKL_SEQ_ABCDE_r1__R1_001.fastq.gz",  # CSV
}
UNMATCHED = fastq_relpath(lib="QQQ_NOMATC")  # in no source: metadata_missing, stays in the drop


def sync_yml(drop: Drop, server: LabKeyTestServer, skip_creates: bool) -> dict[str, Any]:
    """Every key of spec/sync-yml.md."""
    return {
        "drop_filename_filter": "**/*.fastq.gz",
        "drop_filename_regex": SEED_REGEX,
        "repository_folder": str(drop.repository),
        "repository_filename": "scRNA/raw/<phase>/<patient>/<visit>/<lib>_<seq>_r<run>__<suffix>.fastq.gz",
        "processed_folder": str(drop.processed),
        "processed_rebase_from": "..",  # the drop folder's own name is kept under processed/
        "filename_sequence": "run",
        "date_format": "%Y-%m-%d %H:%M:%S",
        "labkey": {"host": server.domain, "container": LABKEY_CONTAINER, "context": LABKEY_CONTEXT,
                   "use_ssl": False, "schema": "exp", "table": "data"},
        "fields": {
            "Name": "<patient>_<visit>", "Patient": "<patient>", "Library": "<lib>_<seq>_r<run>",
            "Project_Phase": "<phase>", "Run_Number": "<run>", "Uploaded_Filename_Prefix": "<prefix>",
            "Data synced": True, "Date_Of_Syncing": "now()", "Date_Of_Uploading": "drop_file_mtime()",
            "Path To Synced Data": None, "Uploaded_File_Name": None, "Checksum": None,
        },
        "field_parameters": {"Path To Synced Data": "file_list_aggregator"},
        "presence_check": {"field": "Name", "match": "equal"},
        "writeback": {"skip_creates": skip_creates},
        "lookups": {"phase": {"btki": "BTKi"}},
        "metadata_sources": [
            {"name": "lk", "type": "labkey", "container": META_CONTAINER, "schema": "lists", "table": "Experiments",
             "columns": ["Name"], "filters": [{"field": "Status", "type": "eq", "value": "released"}]},
            {"name": "samples", "type": "excel", "path": "manifests/samples.xlsx", "sheet": "Samples"},
            {"name": "barcodes", "type": "csv", "path": "manifests/barcodes.csv", "delimiter": ";"},
        ],
        "metadata_match": {"key_template": "<prefix>", "search": [
            {"source": "lk", "field": "Uploaded Filename Prefix"},
            {"source": "samples", "field": "Prefix", "key_template": "<lib>_<seq>"},
            {"source": "barcodes", "field": "Prefix"},
        ]},
        "metadata_required": True,
        "metadata_derive": [
            {"source": "lk", "field": "Name", "regex": DERIVE},
            {"source": "samples", "field": "Sample Id", "regex": DERIVE},
            {"source": "barcodes", "field": "Patient", "regex": DERIVE},
        ],
        "replacements": {
            "before_match": [{"target": "var", "name": "patient", "replace": "-", "with": "."}],
            "before_writeback": [{"target": "var", "name": "patient", "replace": ".", "with": "-"},
                                 {"target": "field", "name": "Library", "replace": "_SEQ_", "with": "/"}],
        },
    }


def every_key_drop(tmp_path: Path, server: LabKeyTestServer, skip_creates: bool = False) -> Drop:
    """The drop, its manifests, the metadata table and the write-back table (with one existing row)."""
    server.create_table(LABKEY_CONTAINER, "exp", "data", [
        ColumnDef("Name"), ColumnDef("Patient_Id", caption="Patient"), ColumnDef("Library"),
        ColumnDef("Project_Phase"), ColumnDef("Run_Number", type="int"), ColumnDef("Uploaded_Filename_Prefix"),
        ColumnDef("Uploaded_File_Name"), ColumnDef("Data_synced", type="boolean"),
        ColumnDef("Date_Of_Syncing", type="date"), ColumnDef("Date_Of_Uploading", type="date"),
        ColumnDef("Path_To_Synced_Data"), ColumnDef("Checksum")])
    server.insert(LABKEY_CONTAINER, "exp", "data", [
        {"Name": "MTR-A-001_V01", "Data_synced": False, "Path_To_Synced_Data": "/old/MTR-A-001_V01_R1.fastq.gz"}])
    server.create_table(META_CONTAINER, "lists", "Experiments", ["Name", "Uploaded_Filename_Prefix", "Status"], key="Key")
    server.insert(META_CONTAINER, "lists", "Experiments", [
        {"Name": "MTR-A-001_V01", "Uploaded_Filename_Prefix": "ABC_DEFGHI_S1_L001", "Status": "released"},
        {"Name": "MTR-Z-999_V09", "Uploaded_Filename_Prefix": "XYZ_QWERTY_S1_L001", "Status": "withdrawn"}])
    drop = make_drop(tmp_path)
    drop.write_config(sync_yml(drop, server, skip_creates))
    (drop.path / "manifests").mkdir()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Samples"
    for record in (["Prefix", "Sample Id"], ["XYZ_QWERTY_SEQ_ZZZZZ", "MTR-B-002_V02"],
                   ["ABC_DEFGHI_SEQ_ABCDE", "MTR-X-000_V00"]):  # the LabKey rule wins for ABC_DEFGHI
        sheet.append(record)
    book.save(drop.path / "manifests" / "samples.xlsx")
    (drop.path / "manifests" / "barcodes.csv").write_text("Prefix;Patient\nDEF_GHIJKL_S2_L002;MTR-C-003_V01\n")
    for rel in [*FILES, UNMATCHED]:
        drop.add_file(rel, mtime=MTIME.timestamp())
    drop.mark_ready()
    return drop


def table(server: LabKeyTestServer) -> dict[str, dict[str, Any]]:
    return {r["Name"]: r for r in server.rows(LABKEY_CONTAINER, "exp", "data")}


def target(drop: Drop, rel: str) -> str:
    return str(drop.repository / FILES[rel])


def md5(rel: str) -> str:
    return hashlib.md5(fastq_content(rel)).hexdigest()


def assert_recorded(drop: Drop, server: LabKeyTestServer, started: datetime) -> None:
    """The table after one sync: the existing row updated (targets aggregated), two rows inserted."""
    rows = table(server)
    assert sorted(rows) == ["MTR-A-001_V01", "MTR-B-002_V02", "MTR-C-003_V01"]
    a = rows["MTR-A-001_V01"]
    r1, r2 = fastq_relpath(read=1), fastq_relpath(read=2)
    assert a["RowId"] == 1 and a["Data_synced"] is True
    assert a["Path_To_Synced_Data"] == f"/old/MTR-A-001_V01_R1.fastq.gz\n{target(drop, r1)}\n{target(drop, r2)}"
    assert (a["Patient_Id"], a["Library"], a["Project_Phase"], a["Run_Number"]) == ("MTR-A-001", "ABC_DEFGHI/ABCDE_r1", "BTKi", 1)
    assert (a["Uploaded_File_Name"], a["Checksum"]) == (Path(r1).name, md5(r1))
    assert a["Date_Of_Uploading"] == MTIME.replace(tzinfo=None)
    synced = a["Date_Of_Syncing"].replace(tzinfo=timezone.utc)
    assert started - timedelta(seconds=1) <= synced <= datetime.now(timezone.utc)
    c = rows["MTR-C-003_V01"]
    rel = fastq_relpath(lib="DEF_GHIJKL", sample=2, lane=2)
    assert (c["Path_To_Synced_Data"], c["Checksum"], c["Uploaded_Filename_Prefix"]) == (target(drop, rel), md5(rel), "DEF_GHIJKL_S2_L002")
    assert rows["MTR-B-002_V02"]["Library"] == "XYZ_QWERTY/ZZZZZ_r1"


def assert_files(drop: Drop) -> None:
    """Copies for every recorded file, originals moved (keeping the drop's name), the unmatched one kept."""
    for rel, rel_target in FILES.items():
        assert (drop.repository / rel_target).read_bytes() == fastq_content(rel)
        assert (drop.processed / drop.path.name / rel).read_bytes() == fastq_content(rel)
        assert not (drop.path / rel).exists()
    assert (drop.path / UNMATCHED).exists()
    assert len(list(drop.repository.rglob("*.fastq.gz"))) == 4


def test_every_key_through_the_job(tmp_path: Path, labkey_env: LabKeyTestServer) -> None:
    drop = every_key_drop(tmp_path, labkey_env)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=FAST)
        assert result.success
        manifest = result.asset_materializations_for_node("drop_manifest")[0].metadata
        # Every check passes but the originals', which warns about the file held back on purpose.
        failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
        assert list(failed) == ["originals_accounted_for"], failed
        assert failed["originals_accounted_for"].severity == dg.AssetCheckSeverity.WARN
        assert "held back (metadata_missing)" in failed["originals_accounted_for"].metadata["problems"].value
        assert_recorded(drop, labkey_env, started)
        assert_files(drop)
        diffs = manifest["labkey_update_diffs"].value
        assert "| RowId=1 |" in diffs and "| Data synced | False | True | yes |" in diffs
        assert "MTR-B-002_V02" in manifest["labkey_planned_creates"].value
        assert manifest["reason/metadata_missing"].value == 1
        before, inserts, updates = table(labkey_env), labkey_env.count("insertRows"), labkey_env.count("updateRows")
        assert (inserts, updates) == (1, 1)  # one batch each
        again = run_job(drop, instance, labkey=FAST)
        assert again.success
    assert table(labkey_env) == before
    assert (labkey_env.count("insertRows"), labkey_env.count("updateRows")) == (inserts, updates)


def test_skip_creates_keeps_files_without_a_row_in_the_drop(tmp_path: Path, labkey_env: LabKeyTestServer) -> None:
    drop = every_key_drop(tmp_path, labkey_env, skip_creates=True)
    with dg.instance_for_test() as instance:
        result = run_job(drop, instance, labkey=FAST)
        assert result.success
        manifest = result.asset_materializations_for_node("drop_manifest")[0].metadata
    assert manifest["reason/writeback_skipped"].value == 2
    assert manifest["labkey_planned_creates"].value == "_no rows_"
    assert sorted(table(labkey_env)) == ["MTR-A-001_V01"] and labkey_env.count("insertRows") == 0
    for rel in FILES:
        moved = "ABC_DEFGHI" in rel
        assert (drop.repository / FILES[rel]).exists() is moved
        assert (drop.path / rel).exists() is not moved


def dropsync(drop: Drop, *args: str) -> subprocess.CompletedProcess:
    """The CLI with this drop's settings; LABKEY_API_KEY comes from the environment (labkey_env)."""
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(drop.root.parent / "dagster_home"),
           "DROPSYNC_LABKEY_RETRY_DELAY": "0.01"}
    return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_every_key_through_the_cli(tmp_path: Path, labkey_env: LabKeyTestServer) -> None:
    drop = every_key_drop(tmp_path, labkey_env)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    shown = dropsync(drop, "plan", str(drop.path))
    assert shown.returncode == 1, shown.stderr  # the unmatched file is held: metadata_missing
    assert "LabKey update diffs" in shown.stdout and "LabKey planned creates" in shown.stdout
    assert "RowId=1" in shown.stdout and "MTR-C-003_V01" in shown.stdout
    assert labkey_env.count("insertRows") == labkey_env.count("updateRows") == 0  # planning writes nothing
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 1, done.stderr
    assert "held:metadata_missing" in done.stdout
    assert "LabKey exp.data: 2 rows inserted, 1 updated, 0 unchanged; 4 files recorded, 0 held" in done.stdout
    assert_recorded(drop, labkey_env, started)
    assert_files(drop)
    before = table(labkey_env)
    again = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert again.returncode == 1, again.stderr
    assert table(labkey_env) == before
    assert (labkey_env.count("insertRows"), labkey_env.count("updateRows")) == (1, 1)
    labkey_env.stop()  # LabKey gone at planning: one line, exit 3, nothing copied
    drop.add_file(fastq_relpath(read=3))
    refused = dropsync(drop, "plan", str(drop.path))
    assert refused.returncode == 3 and refused.stderr.count("\n") == 1
    assert "LabKey is unreachable" in refused.stderr
