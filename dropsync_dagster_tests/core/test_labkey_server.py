"""The LabKey test server, exercised only through the official `labkey` client (and raw HTTP
where the client cannot express a case): every behaviour asserted here is one the spec documents."""

from __future__ import annotations

import re
import time

import pytest
import requests
from labkey.api_wrapper import APIWrapper
from labkey.exceptions import (
    QueryNotFoundError,
    RequestAuthorizationError,
    ServerContextError,
    ServerNotFoundError,
)
from labkey.query import QueryFilter

from dropsync_dagster_tests.fixtures.labkey import (
    LABKEY_API_KEY,
    LABKEY_CONTAINER,
    LABKEY_CONTEXT,
    LABKEY_READER_KEY,
    start_labkey_server,
)
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer
from dropsync_dagster_tests.support.labkey_server_values import ColumnDef

PEOPLE = [
    {"Name": "alice", "Path_To_Synced_Data": "/repo/a/ALICE_1.fastq.gz", "Score": 3},
    {"Name": "bob", "Path_To_Synced_Data": "/repo/b/bob;2.fastq.gz", "Score": 5},
    {"Name": "carol", "Path_To_Synced_Data": None, "Score": 7},
    {"Name": "Alice", "Path_To_Synced_Data": "/repo/a/alice_2.fastq.gz\n/repo/a/alice_3.fastq.gz", "Score": None},
]


@pytest.fixture
def people(labkey_server: LabKeyTestServer) -> LabKeyTestServer:
    labkey_server.create_table(LABKEY_CONTAINER, "lists", "People",
                               [ColumnDef("Name"), ColumnDef("Path_To_Synced_Data"), ColumnDef("Score", type="int")],
                               key="Key")
    labkey_server.insert(LABKEY_CONTAINER, "lists", "People", PEOPLE)
    return labkey_server


def names(reply: dict) -> list[str]:
    return [r["Name"] for r in reply["rows"]]


@pytest.mark.parametrize(("column", "op", "value", "expected"), [
    ("Name", "eq", "alice", ["alice"]),  # eq is case-sensitive
    ("Name", "neq", "alice", ["bob", "carol", "Alice"]),
    ("Score", "neq", "3", ["bob", "carol"]),  # NULL <> 3 is not true
    ("Name", "contains", "LIC", ["alice", "Alice"]),  # LIKE is case-insensitive
    ("Name", "startswith", "ca", ["carol"]),
    ("Name", "in", "bob;carol", ["bob", "carol"]),
    ("Score", "in", "5;7", ["bob", "carol"]),
    ("Path_To_Synced_Data", "containsoneof", "alice_3;bob", ["bob", "Alice"]),
    ("Path_To_Synced_Data", "in", '{json:["/repo/b/bob;2.fastq.gz"]}', ["bob"]),  # ';' inside a value
    ("Path_To_Synced_Data", "containsoneof", '{json:["b;2", "nothing"]}', ["bob"]),
    ("Path_To_Synced_Data", "isblank", "", ["carol"]),
    ("Path_To_Synced_Data", "isnonblank", "", ["alice", "bob", "Alice"]),
    ("Score", "gte", "5", ["bob", "carol"]),
])
def test_select_filter_operators(people: LabKeyTestServer, labkey_api: APIWrapper, column: str, op: str,
                                 value: str, expected: list[str]) -> None:
    reply = labkey_api.query.select_rows("lists", "People", filter_array=[QueryFilter(column, value, op)])
    assert names(reply) == expected
    assert reply["rowCount"] == len(expected)


def test_repeated_filters_are_anded_and_unknown_columns_ignored(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    reply = labkey_api.query.select_rows("lists", "People", filter_array=[
        QueryFilter("Name", "a", "contains"), QueryFilter("Name", "ce", "contains"),
        QueryFilter("Path To Synced Data", "zzz", "eq"),  # a caption is not a column name: ignored
    ])
    assert names(reply) == ["alice", "Alice"]
    assert "Ignoring filter/sort on column 'Path To Synced Data'" in reply["messages"][0]["content"]


def test_select_shape_columns_and_key(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    reply = labkey_api.query.select_rows("lists", "People", columns="Name,Path_To_Synced_Data")
    assert reply["formatVersion"] == 8.3
    assert reply["metaData"]["id"] == "Key"
    fields = {f["name"]: f["caption"] for f in reply["metaData"]["fields"]}
    assert fields == {"Key": "Key", "Name": "Name", "Path_To_Synced_Data": "Path To Synced Data"}
    assert reply["rows"][0] == {"Key": 1, "Name": "alice", "Path_To_Synced_Data": "/repo/a/ALICE_1.fastq.gz"}
    assert [c["dataIndex"] for c in reply["columnModel"]] == ["Key", "Name", "Path_To_Synced_Data"]


def test_pagination(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    page = labkey_api.query.select_rows("lists", "People", max_rows=2, offset=1, sort="-Key")
    assert names(page) == ["carol", "bob"] and page["rowCount"] == 4
    everything = labkey_api.query.select_rows("lists", "People", offset=3)  # max_rows=-1 ignores offset
    assert len(everything["rows"]) == 4
    meta_only = labkey_api.query.select_rows("lists", "People", max_rows=0)
    assert meta_only["rows"] == [] and meta_only["rowCount"] == 4 and meta_only["metaData"]["fields"]


def test_insert_update_delete(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    inserted = labkey_api.query.insert_rows("lists", "People", [{"Path To Synced Data": "/d/1", "name": "dan"}])
    assert inserted["command"] == "insert" and inserted["rowsAffected"] == 1
    assert inserted["containerPath"] == "/" + LABKEY_CONTAINER
    row = inserted["rows"][0]
    assert row["Key"] == 5 and row["Path_To_Synced_Data"] == "/d/1" and "Score" not in row  # lists omit nulls
    # update locates by key and takes names only: a caption key is ignored
    updated = labkey_api.query.update_rows("lists", "People", [{"key": 5, "Score": 9, "Path To Synced Data": "/x"}])
    assert updated["rows"][0]["Score"] == 9
    assert people.rows(LABKEY_CONTAINER, "lists", "People")[-1] == {
        "Key": 5, "Name": "dan", "Path_To_Synced_Data": "/d/1", "Score": 9}
    deleted = labkey_api.query.delete_rows("lists", "People", [{"Key": 5}, {"Key": 99}])
    assert deleted["rowsAffected"] == 2 and [r["Key"] for r in deleted["rows"]] == [5]
    assert len(people.rows(LABKEY_CONTAINER, "lists", "People")) == 4


def test_hard_table_returns_lower_case_names(labkey_server: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    labkey_server.create_table(LABKEY_CONTAINER, "core", "datastates", ["Label"], result_names="lower")
    reply = labkey_api.query.insert_rows("core", "datastates", [{"Label": "a"}, {"Label": "b"}])
    assert [r["rowid"] for r in reply["rows"]] == [1, 2] and reply["rowsAffected"] == 2


def test_lsid_key_is_generated(labkey_server: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    labkey_server.create_table(LABKEY_CONTAINER, "study", "Visits", ["ParticipantId"], key="lsid", key_type="string")
    reply = labkey_api.query.insert_rows("study", "Visits", [{"ParticipantId": "P1"}])
    lsid = reply["rows"][0]["lsid"]
    assert lsid.startswith("urn:lsid:")
    assert labkey_api.query.select_rows("study", "Visits")["metaData"]["id"] == "lsid"
    labkey_api.query.update_rows("study", "Visits", [{"LSID": lsid, "ParticipantId": "P2"}])
    assert labkey_server.rows(LABKEY_CONTAINER, "study", "Visits")[0]["ParticipantId"] == "P2"


def test_save_errors(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    with pytest.raises(QueryNotFoundError, match="404: The existing row was not found"):
        labkey_api.query.update_rows("lists", "People", [{"Key": 1, "Name": "x"}, {"Key": 99, "Name": "y"}])
    assert people.rows(LABKEY_CONTAINER, "lists", "People")[0]["Name"] == "alice"  # all or nothing
    with pytest.raises(ServerContextError, match="500: The query 'Nope' in the schema 'lists' does not exist"):
        labkey_api.query.insert_rows("lists", "Nope", [{"Name": "x"}])
    with pytest.raises(ServerContextError, match="500: The schema 'nope' does not exist"):
        labkey_api.query.insert_rows("nope", "People", [{"Name": "x"}])
    with pytest.raises(ServerContextError, match="400: Could not convert value 'many'"):
        labkey_api.query.insert_rows("lists", "People", [{"Name": "x", "Score": "many"}])
    with pytest.raises(ServerContextError, match="400: No 'rows' array supplied"):
        labkey_api.query.insert_rows("lists", "People", [])


def test_select_errors(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    with pytest.raises(QueryNotFoundError, match="404: The specified schema does not exist"):
        labkey_api.query.select_rows("nope", "People")
    with pytest.raises(QueryNotFoundError, match="404: The specified query 'Nope' does not exist in schema 'lists'"):
        labkey_api.query.select_rows("lists", "Nope")
    with pytest.raises(ServerContextError, match="400: Could not convert filter value"):
        labkey_api.query.select_rows("lists", "People", filter_array=[QueryFilter("Score", "x", "eq")])
    other = APIWrapper(people.domain, "No Project/x", LABKEY_CONTEXT, use_ssl=False, api_key=LABKEY_API_KEY)
    with pytest.raises(QueryNotFoundError, match="No such project: /No Project"):
        other.query.select_rows("lists", "People")
    folder = APIWrapper(people.domain, "LOOP Intercept/Missing", LABKEY_CONTEXT, use_ssl=False, api_key=LABKEY_API_KEY)
    with pytest.raises(QueryNotFoundError, match="No such folder or workbook"):
        folder.query.select_rows("lists", "People")
    wrong_context = APIWrapper(people.domain, LABKEY_CONTAINER, "elsewhere", use_ssl=False, api_key=LABKEY_API_KEY)
    with pytest.raises(ServerNotFoundError):
        wrong_context.query.select_rows("lists", "People")


def test_csrf_flow(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    me = labkey_api.security.who_am_i()
    assert me.id == 1001 and re.fullmatch(r"[0-9a-f]{64}", me.CSRF)
    raw = requests.get(f"http://{people.domain}/labkey/{LABKEY_CONTAINER}/login-whoAmI.api",
                       headers={"apikey": LABKEY_API_KEY}, timeout=5)
    assert raw.json()["CSRF"] == raw.cookies["X-LABKEY-CSRF"]
    no_csrf = APIWrapper(people.domain, LABKEY_CONTAINER, LABKEY_CONTEXT, use_ssl=False, api_key=LABKEY_API_KEY,
                         disable_csrf=True)
    assert names(no_csrf.query.select_rows("lists", "People", max_rows=1)) == ["alice"]  # getQuery: CSRF(NONE)
    with pytest.raises(RequestAuthorizationError, match="401: This request has an invalid security context"):
        no_csrf.query.insert_rows("lists", "People", [{"Name": "x"}])
    forged = requests.post(f"http://{people.domain}/labkey/{LABKEY_CONTAINER}/query-insertRows.api",
                           json={"schemaName": "lists", "queryName": "People", "rows": [{"Name": "x"}]},
                           headers={"apikey": LABKEY_API_KEY, "X-LABKEY-CSRF": "0" * 64}, timeout=5)
    assert forged.status_code == 401
    assert len(people.rows(LABKEY_CONTAINER, "lists", "People")) == 4


def test_authentication(people: LabKeyTestServer, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    monkeypatch.setenv("NETRC", str(netrc))

    def client(key: str | None) -> APIWrapper:
        return APIWrapper(people.domain, LABKEY_CONTAINER, LABKEY_CONTEXT, use_ssl=False, api_key=key)

    with pytest.raises(RequestAuthorizationError, match="401: User does not have permission"):
        client("WRONG").query.select_rows("lists", "People")
    with pytest.raises(RequestAuthorizationError):
        client(None).query.select_rows("lists", "People")
    assert client("WRONG").security.who_am_i().id == 0  # whoami answers guests
    with pytest.raises(ServerContextError, match="403: User does not have permission"):
        client(LABKEY_READER_KEY).query.insert_rows("lists", "People", [{"Name": "x"}])
    assert len(client(LABKEY_READER_KEY).query.select_rows("lists", "People")["rows"]) == 4
    # ~/.netrc Basic apikey:<key>, which the real server checks before the apikey header
    netrc.write_text(f"machine 127.0.0.1 login apikey password {LABKEY_API_KEY}\n")
    assert len(client(None).query.select_rows("lists", "People")["rows"]) == 4
    netrc.write_text("machine 127.0.0.1 login apikey password WRONG\n")
    with pytest.raises(RequestAuthorizationError):
        client(LABKEY_API_KEY).query.select_rows("lists", "People")


def test_root_server_without_context_path() -> None:
    server = start_labkey_server(context_path=None)
    try:
        server.create_table("/", "lists", "Top", ["Name"])
        server.insert("/", "lists", "Top", [{"Name": "x"}])
        api = APIWrapper(server.domain, "", None, use_ssl=False, api_key=LABKEY_API_KEY)
        assert names(api.query.select_rows("lists", "Top")) == ["x"]
        assert server.requests[-1].path == "/query-getQuery.api"
    finally:
        server.stop()


def test_faults_and_counters(people: LabKeyTestServer, labkey_api: APIWrapper) -> None:
    people.fail_next(1, status=503, action="selectRows")
    with pytest.raises(ServerContextError, match="503: Injected failure"):
        labkey_api.query.select_rows("lists", "People")
    assert len(labkey_api.query.select_rows("lists", "People")["rows"]) == 4
    people.drop_next(1, action="selectRows")
    with pytest.raises(ServerContextError, match="Failed to connect"):
        labkey_api.query.select_rows("lists", "People")
    people.drop_next(1, action="insertRows", after_processing=True)
    with pytest.raises(ServerContextError):
        labkey_api.query.insert_rows("lists", "People", [{"Name": "lost reply"}])
    assert people.rows(LABKEY_CONTAINER, "lists", "People")[-1]["Name"] == "lost reply"  # applied anyway
    people.set_delay(0.5, action="selectRows", n=1)
    started = time.monotonic()
    with pytest.raises(ServerContextError):
        labkey_api.query.select_rows("lists", "People", timeout=0.1)
    assert time.monotonic() - started < 0.45
    assert (people.count("whoami"), people.count("selectRows"), people.count("insertRows")) == (1, 4, 1)
    people.reset_counters()
    assert people.count("selectRows") == 0 and people.requests == []
