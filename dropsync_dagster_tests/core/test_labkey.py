"""core.labkey.connection against the LabKey test server through the real `labkey` client."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError
from dropsync_dagster.core.labkey.connection import Filter, LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey.columns import Column, resolve_fields
from dropsync_dagster.core.labkey.presence import PresenceMatch, multi_value, presence_batches
from dropsync_dagster.core.labkey.transport import RetryPolicy, UnconfirmedWrite
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY, LABKEY_CONTAINER, LABKEY_READER_KEY
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, timeout=5)


def client(section: dict[str, Any], **kwargs: Any) -> LabKeyClient:
    """A client with the editor key unless `api_key` says otherwise (None: ~/.netrc or nothing)."""
    kwargs.setdefault("api_key", LABKEY_API_KEY)
    return LabKeyClient(LabKeyConnection.from_section(section), retry=kwargs.pop("retry", FAST), **kwargs)


def seed_paths(server: LabKeyTestServer, paths: list[str]) -> list[dict[str, Any]]:
    return server.insert(LABKEY_CONTAINER, "exp", "data",
                         [{"Name": f"n{i}", "Path_To_Synced_Data": p} for i, p in enumerate(paths)])


def test_connection_from_section() -> None:
    conn = LabKeyConnection.from_section({"host": "lk.example.org:8443", "container": "LOOP Intercept/A b",
                                          "context": "labkey", "schema": "exp", "table": "data"})
    assert conn.url == "https://lk.example.org:8443/labkey/LOOP Intercept/A b" and conn.use_ssl
    assert conn.overridden({"container": "Other", "host": None}).url == "https://lk.example.org:8443/labkey/Other"
    assert LabKeyConnection.from_section({"host": "h", "container": "c", "use_ssl": None}).use_ssl
    with pytest.raises(ConfigError, match="labkey.container is required"):
        LabKeyConnection.from_section({"host": "x"})
    with pytest.raises(ConfigError, match="without dots"):
        LabKeyConnection.from_section({"host": "x", "container": "c", "schema": "exp.data"})


def test_credentials_never_shown(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section)
    assert LABKEY_API_KEY not in repr(lk) and LABKEY_API_KEY not in repr(lk.connection)
    assert lk.table_info("exp", "data").key == "RowId"  # the env key was used: the server accepted it


def test_columns_key_and_caption_resolution(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section)
    info = lk.table_info("exp", "data")
    assert info.key == "RowId"
    assert Column("Path_To_Synced_Data", "Path To Synced Data") in info.columns
    assert lk.resolve_fields("exp", "data", ["Path To Synced Data", "data synced", "RUN-NUMBER", "Name"]) == {
        "Path To Synced Data": "Path_To_Synced_Data", "data synced": "Data_synced",
        "RUN-NUMBER": "Run_Number", "Name": "Name"}
    with pytest.raises(ConfigError, match=r"field 'Sample' matches no column of exp.data; its columns are: RowId \(Row Id\), Name"):
        lk.resolve_fields("exp", "data", ["Sample"])
    assert labkey_env.count("selectRows") == 1  # columns fetched once per table


def test_resolution_prefers_exact_name_and_reports_ambiguity() -> None:
    columns = [Column("Run", "Run Number"), Column("Run_Number", "Run No"), Column("a_b", "X"), Column("AB", "Y")]
    assert resolve_fields(["Run", "run number", "Run_Number"], columns, "t") == {
        "Run": "Run", "run number": "Run", "Run_Number": "Run_Number"}
    with pytest.raises(ConfigError, match="field 'a-b' is ambiguous in t: it matches columns a_b, AB"):
        resolve_fields(["a-b"], columns, "t")


def test_select_paginates_and_resolves_captions(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    seed_paths(labkey_env, [f"/repo/{i}" for i in range(10)])
    lk = client(labkey_section, page_size=3)
    labkey_env.reset_counters()
    rows = lk.select_rows("exp", "data", columns=["Path To Synced Data"],
                          filters=[{"field": "Path To Synced Data", "type": "startswith", "value": "/repo/"},
                                   Filter("name", "neq", "n9")])
    assert [r["Path_To_Synced_Data"] for r in rows] == [f"/repo/{i}" for i in range(9)]
    assert set(rows[0]) == {"RowId", "Path_To_Synced_Data"}  # the key always comes along
    assert labkey_env.count("selectRows") == 1 + 3  # columns once, then 3 pages of 3
    with pytest.raises(ConfigError, match="unknown filter type 'like'"):
        lk.select_rows("exp", "data", filters=[{"field": "Name", "type": "like", "value": "x"}])


def test_presence_batches_requests_not_files(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    targets = [f"/data/repository/scRNA/raw/p/LIB_{i:05d}_SEQ_ABCDE_r1__R1_001.fastq.gz" for i in range(1000)]
    seed_paths(labkey_env, targets[::10] + ["/elsewhere/x.fastq.gz"])
    lk = client(labkey_section)
    labkey_env.reset_counters()
    found = lk.find_rows("exp", "data", "Path To Synced Data", targets)
    assert labkey_env.count("selectRows") <= 5
    assert sorted(t for t, rows in found.items() if rows) == sorted(targets[::10])
    assert all("RowId" in rows[0] for rows in found.values() if rows)
    assert max(r.body_bytes for r in labkey_env.requests) < 300_000


def test_contains_and_equal_semantics(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    seed_paths(labkey_env, ["/repo/a.gz\n/repo/b.gz", "/repo/c;1.gz", "/REPO/D.gz", "/repo/d.gz.old"])
    lk = client(labkey_section)
    targets = ["/repo/a.gz", "/repo/b.gz", "/repo/c;1.gz", "/repo/D.gz", "/repo/none.gz"]
    contains = lk.find_rows("exp", "data", "Path_To_Synced_Data", targets, PresenceMatch.CONTAINS)
    assert {t: [r["Name"] for r in rows] for t, rows in contains.items()} == {
        "/repo/a.gz": ["n0"], "/repo/b.gz": ["n0"], "/repo/c;1.gz": ["n1"], "/repo/D.gz": [], "/repo/none.gz": []}
    equal = lk.find_rows("exp", "data", "Path_To_Synced_Data", [*targets, "/repo/d.gz"], "equal",
                         columns=["Name"])
    assert {t: [r["Name"] for r in rows] for t, rows in equal.items()} == {
        "/repo/a.gz": [], "/repo/b.gz": [], "/repo/c;1.gz": ["n1"], "/repo/D.gz": [], "/repo/none.gz": [],
        "/repo/d.gz": []}
    assert set(equal["/repo/c;1.gz"][0]) == {"RowId", "Name", "Path_To_Synced_Data"}


def test_batch_helpers() -> None:
    assert presence_batches(["a", "b", "a", "", "c"], max_values=2) == [["a", "b"], ["c"]]
    assert [len(b) for b in presence_batches([f"{i:0100d}" for i in range(31)], max_bytes=3100)] == [10, 10, 10, 1]
    assert multi_value(["a", "b"]) == "a;b" and multi_value(["a;b", "c"]) == '{json:["a;b", "c"]}'


@pytest.mark.parametrize(("key", "key_type"), [("Key", "int"), ("lsid", "string")])
def test_key_column_other_than_rowid(labkey_env: LabKeyTestServer, key: str, key_type: str) -> None:
    labkey_env.create_table(LABKEY_CONTAINER, "lists", "Files", ["Name", "Path"], key=key, key_type=key_type,
                            result_names="lower")  # replies name the key in lower case
    section = {"host": labkey_env.domain, "container": LABKEY_CONTAINER, "context": "labkey", "use_ssl": False}
    lk = client(section)
    created = lk.insert_rows("lists", "Files", [{"Name": "f1", "path": "/r/f1"}, {"Name": "f2", "Path": "/r/f2"}])
    assert lk.table_info("lists", "Files").key == key
    keys = [row[key] for row in created]  # returned keys matched to the key column case-insensitively
    found = lk.find_rows("lists", "Files", "Path", ["/r/f2"], "equal", columns=["Name"])
    assert found["/r/f2"][0][key] == keys[1]
    lk.update_rows("lists", "Files", [{key.upper(): keys[1], "Name": "f2-renamed"}])
    assert [r["Name"] for r in labkey_env.rows(LABKEY_CONTAINER, "lists", "Files")] == ["f1", "f2-renamed"]


def test_writes_in_batches_with_captions(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section, write_batch=2)
    batches: list[int] = []
    created = lk.insert_rows("exp", "data", [{"Name": f"n{i}", "Path To Synced Data": f"/p/{i}"} for i in range(5)],
                             on_batch=lambda rows: batches.append(len(rows)))
    assert [r["RowId"] for r in created] == [1, 2, 3, 4, 5] and batches == [2, 2, 1]
    assert labkey_env.count("insertRows") == 3
    # the server ignores captions on update; resolution makes them work
    lk.update_rows("exp", "data", [{"RowId": 2, "Data synced": True, "run number": "7"}])
    row = labkey_env.rows(LABKEY_CONTAINER, "exp", "data")[1]
    assert row["Data_synced"] is True and row["Run_Number"] == 7
    with pytest.raises(DropsyncError, match="row 0 has no RowId"):
        lk.update_rows("exp", "data", [{"Name": "no key"}])


def test_retry_on_500_then_success(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section)
    lk.table_info("exp", "data")
    labkey_env.fail_next(2, status=500, action="selectRows")
    assert lk.select_rows("exp", "data") == []
    assert labkey_env.count("selectRows") == 1 + 3
    # A 500 on a write may follow a commit: the insert is not sent again blindly (labkey_records
    # re-reads presence instead).
    labkey_env.fail_next(1, status=500, action="insertRows", after_processing=True)
    with pytest.raises(UnconfirmedWrite, match=r"LabKey failed \(500\).*may or may not have been applied"):
        lk.insert_rows("exp", "data", [{"Name": "once"}])
    assert [r["Name"] for r in labkey_env.rows(LABKEY_CONTAINER, "exp", "data")] == ["once"]
    assert labkey_env.count("insertRows") == 1
    labkey_env.fail_next(5, status=502, action="selectRows")
    with pytest.raises(RefusedError, match=r"LabKey failed \(502\) after 3 attempts"):
        lk.select_rows("exp", "data")


def test_no_retry_on_400(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section)
    with pytest.raises(RefusedError, match=r"insert into exp.data .* LabKey failed \(400\): Could not convert value 'x'"):
        lk.insert_rows("exp", "data", [{"Name": "a", "Run_Number": "x"}])
    assert labkey_env.count("insertRows") == 1


def test_401_is_a_clear_refusal(labkey_server: LabKeyTestServer, labkey_section: dict[str, Any],
                                monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with pytest.raises(RefusedError, match=r"LabKey refused the credentials \(401\).*using LABKEY_API_KEY") as err:
        client(labkey_section, api_key="not-the-key").select_rows("exp", "data")
    assert "not-the-key" not in str(err.value)
    assert labkey_server.count("selectRows") == 1  # no retry storm
    with pytest.raises(RefusedError, match="no credentials"):
        client(labkey_section, api_key=None).select_rows("exp", "data")
    with pytest.raises(RefusedError, match=r"refused the credentials \(403\)"):
        client(labkey_section, api_key=LABKEY_READER_KEY).insert_rows("exp", "data", [{"Name": "x"}])


def test_dropped_connection(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    lk = client(labkey_section)
    seed_paths(labkey_env, ["/p/1"])
    labkey_env.drop_next(2, action="selectRows")
    assert [r["Name"] for r in lk.select_rows("exp", "data")] == ["n0"]  # idempotent: retried
    labkey_env.drop_next(1, action="updateRows", after_processing=True)
    lk.update_rows("exp", "data", [{"RowId": 1, "Name": "renamed"}])
    assert labkey_env.count("updateRows") == 2
    labkey_env.drop_next(1, action="insertRows", after_processing=True)
    with pytest.raises(RefusedError, match="may or may not have been applied"):
        lk.insert_rows("exp", "data", [{"Name": "lost reply"}])
    assert labkey_env.count("insertRows") == 1  # not retried: no duplicate row
    assert [r["Name"] for r in labkey_env.rows(LABKEY_CONTAINER, "exp", "data")] == ["renamed", "lost reply"]


def test_timeout_covers_the_csrf_handshake(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    labkey_env.set_delay(2.0, action="whoami", n=1)
    lk = client(labkey_section, retry=RetryPolicy(attempts=2, base_delay=0.01, timeout=0.3))
    assert lk.table_info("exp", "data").key == "RowId"
    assert labkey_env.count("whoami") == 2


def test_unreachable_and_wrong_places(labkey_env: LabKeyTestServer, labkey_section: dict[str, Any]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    with pytest.raises(RefusedError, match=r"LabKey is unreachable after 3 attempts"):
        client({**labkey_section, "host": f"127.0.0.1:{free_port}"}).select_rows("exp", "data")
    with pytest.raises(ConfigError, match=r"No such project: /Nowhere \(404\)"):
        client({**labkey_section, "container": "Nowhere"}).select_rows("exp", "data")
    with pytest.raises(ConfigError, match="no LabKey API at this address"):
        client({**labkey_section, "context": "wrong"}).select_rows("exp", "data")
    with pytest.raises(ConfigError, match="The specified query 'datas' does not exist"):
        client(labkey_section).table_info("exp", "datas")
    with pytest.raises(RefusedError, match=r"\(404\): The existing row was not found"):
        client(labkey_section).update_rows("exp", "data", [{"RowId": 42, "Name": "x"}])
    assert labkey_env.count("updateRows") == 1


def test_insert_retried_when_only_the_csrf_handshake_failed(labkey_env: LabKeyTestServer,
                                                            labkey_section: dict[str, Any]) -> None:
    labkey_env.drop_next(1, action="whoami")
    labkey_env.fail_next(1, status=504, action="whoami")
    client(labkey_section).insert_rows("exp", "data", [{"Name": "once"}])
    assert labkey_env.count("whoami") == 3 and labkey_env.count("insertRows") == 1
    assert [r["Name"] for r in labkey_env.rows(LABKEY_CONTAINER, "exp", "data")] == ["once"]
