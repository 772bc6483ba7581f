"""CouchDB-only behaviour of the status store: quorum (202), outages, credentials, set-up."""

from __future__ import annotations

import pytest
import requests

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster_tests.fixtures.couchdb import CouchDBDatabase, QuorumProxy, free_port

DROP = "inbox-run_001"


def couch_store(
    couchdb_db: CouchDBDatabase, url: str | None = None, password: str | None = None
) -> CouchDBStatusStore:
    return CouchDBStatusStore(
        url or couchdb_db.url,
        couchdb_db.db,
        couchdb_db.user,
        couchdb_db.password if password is None else password,
    )


def test_couchdb_202_is_confirmed_by_rereading(
    couchdb_db: CouchDBDatabase, couchdb_quorum_proxy: QuorumProxy
) -> None:
    couch_store(couchdb_db).register(DROP, "/a")
    claimed = couch_store(couchdb_db, url=couchdb_quorum_proxy.url).claim(DROP, "run-A", "h:1", 60)
    puts = [
        i
        for i, (method, path, _) in enumerate(couchdb_quorum_proxy.log)
        if method == "PUT" and path.endswith(DROP)
    ]
    assert [couchdb_quorum_proxy.log[i][2] for i in puts] == [202]
    assert couchdb_quorum_proxy.log[puts[0] + 1][:2] == ("GET", f"/{couchdb_db.db}/{DROP}")  # the re-read
    stored = couch_store(couchdb_db).get(DROP)
    assert stored is not None and (stored.owner, stored.rev) == ("run-A", claimed.rev)


def test_couchdb_202_losing_to_a_rival_is_not_a_win(
    couchdb_db: CouchDBDatabase, couchdb_quorum_proxy: QuorumProxy
) -> None:
    direct = couch_store(couchdb_db)
    registered = direct.register(DROP, "/a")
    auth = (couchdb_db.user, couchdb_db.password)

    def rival_on_another_node(path: str, accepted: dict) -> None:
        # A rival claim lands on another node at the same generation and wins the conflict.
        parent = registered.rev.split("-", 1)[1]  # type: ignore[union-attr]
        rival = {
            **registered.body(),
            "status": "processing",
            "owner": "run-RIVAL",
            "worker_id": "other:9",
            "lease_expires_at": "2099-01-01T00:00:00Z",
            "_rev": "2-" + "f" * 32,
            "_revisions": {"start": 2, "ids": ["f" * 32, parent]},
        }
        resp = requests.post(
            f"{couchdb_db.url}/{couchdb_db.db}/_bulk_docs",
            auth=auth,
            timeout=10,
            json={"docs": [rival], "new_edits": False},
        )
        assert resp.status_code == 201 and accepted["rev"] != rival["_rev"]

    couchdb_quorum_proxy.on_accept = rival_on_another_node
    with pytest.raises(RefusedError, match="claimed by run run-RIVAL"):
        couch_store(couchdb_db, url=couchdb_quorum_proxy.url).claim(DROP, "run-A", "h:1", 60)
    assert direct.get(DROP).owner == "run-RIVAL"  # type: ignore[union-attr]


def test_couchdb_unreachable_is_one_line_without_credentials(couchdb_db: CouchDBDatabase) -> None:
    url = f"http://{couchdb_db.user}:{couchdb_db.password}@127.0.0.1:{free_port()}/"
    store = CouchDBStatusStore(url)
    with pytest.raises(RefusedError) as refused:
        store.get(DROP)
    message = str(refused.value)
    assert "is unreachable" in message and url.split("@")[1].rstrip("/") in message and "\n" not in message
    assert couchdb_db.password not in message + repr(store) and couchdb_db.user not in message + repr(store)


def test_couchdb_wrong_password_is_named_clearly(couchdb_db: CouchDBDatabase) -> None:
    with pytest.raises(RefusedError, match="rejected the credentials") as refused:
        couch_store(couchdb_db, password="wrong-password").register(DROP, "/a")
    assert "wrong-password" not in str(refused.value) and couchdb_db.password not in str(refused.value)


def test_couchdb_creates_database_indexes_and_view(couchdb_db: CouchDBDatabase) -> None:
    couch_store(couchdb_db).register(DROP, "/a")
    couch_store(couchdb_db).register("second", "/b")  # a second client finds everything in place
    auth = (couchdb_db.user, couchdb_db.password)
    base = f"{couchdb_db.url}/{couchdb_db.db}"
    indexes = {i["name"] for i in requests.get(f"{base}/_index", auth=auth, timeout=10).json()["indexes"]}
    assert {"drop-status", "file-source", "file-target", "file-processed"} <= indexes
    design = requests.get(f"{base}/_design/dropsync", auth=auth, timeout=10).json()
    assert "status_counts" in design["views"] and design["_rev"].startswith("1-")
