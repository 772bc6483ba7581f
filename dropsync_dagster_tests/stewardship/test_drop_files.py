"""A drop's file documents listed from both status stores, with the fixity an audit records."""

from __future__ import annotations

from datetime import UTC, datetime

from dropsync_dagster.core.status.files import FileDoc, Fixity
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster_tests.core.test_status import case, store  # noqa: F401 - the two-store fixtures

DROP = "inbox-run_001"
PAGE = 1000  # the CouchDB store's page size: one more document makes it turn a page


def test_drop_files_lists_exactly_one_drops_documents_across_pages(store: StatusStore) -> None:  # noqa: F811
    store.put_files(DROP, [FileDoc(relpath=f"f{n:05d}") for n in range(PAGE + 1)])
    store.put_files("inbox-run_0010", [FileDoc(relpath="other")])  # a key that extends DROP's
    store.put_files("inbox-run_00", [FileDoc(relpath="shorter")])
    listed = store.drop_files(DROP)
    assert [d.relpath for d in listed] == [f"f{n:05d}" for n in range(PAGE + 1)]
    assert {d.drop for d in listed} == {DROP}
    assert [d.relpath for d in store.drop_files("inbox-run_0010")] == ["other"]
    assert store.drop_files("inbox-nothing") == []


def test_fixity_of_each_copy_adds_up(store: StatusStore) -> None:  # noqa: F811
    first, later = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    store.put_files(DROP, [FileDoc(relpath="a", verified_at=first, fixity={"repository": Fixity(outcome="match", at=first)})])
    store.put_files(DROP, [FileDoc(relpath="a", fixity={"archive": Fixity(outcome="differs", at=later, detail="x")})])
    doc = store.get_file(f"{DROP}:a")
    assert doc is not None and doc.verified_at == first
    assert doc.fixity["repository"].outcome == "match" and doc.fixity["archive"].outcome == "differs"
