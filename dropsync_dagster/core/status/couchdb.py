"""The status store on CouchDB (or any server speaking its HTTP API), through `requests`.

Why `requests` rather than a CouchDB library: couchdb-python is archived and unmaintained
(since 2019), python-cloudant is deprecated in favour of IBM's cloud SDK, and the claim depends
on telling HTTP 201 (committed to quorum: won) from 202 (accepted below quorum: must be re-read)
— plainest with raw HTTP. `requests` is maintained, already a dependency, and the handful of
endpoints used here (document PUT/GET, `_bulk_docs`, `_all_docs`, `_find`, `_index`, one view)
need no more. Credentials live only in the session's auth: never in repr, logs or errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from dropsync_dagster.core.errors import ConfigError, RefusedError
from dropsync_dagster.core.redact import redact
from dropsync_dagster.core.status.store import StatusStore

DEFAULT_DB = "dropsync"
SCHEMA_VERSION = 1  # bump when the indexes or views below change
_DESIGN = "_design/dropsync"
_MANGO_DDOC = "dropsync-mango"
_MANGO_INDEXES = {
    "drop-status": ["type", "status"],
    "file-source": ["source"],
    "file-target": ["target"],
    "file-processed": ["processed"],
}
_VIEWS = {
    "status_counts": {
        "map": "function (doc) { if (doc.type === 'drop') { emit(doc.status, null); } }",
        "reduce": "_count",
    }
}
_PAGE = 1000
_DB_NAME = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")  # CouchDB's rule for database names


def _public_url(url: str) -> str:
    """`url` without any user:password@ part, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class CouchDBStatusStore(StatusStore):
    """Status documents in one CouchDB database, created with its indexes on first use."""

    def __init__(
        self,
        url: str,
        db: str = DEFAULT_DB,
        user: str | None = None,
        password: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        if not _DB_NAME.match(db):
            raise ConfigError(f"CouchDB database name {db!r} is invalid (lowercase letter first)")
        parts = urlsplit(url)
        if parts.username and user is None:  # credentials given inside the URL
            user, password = parts.username, parts.password
        self.url = _public_url(url)
        self._secrets = (password, parts.password)  # redacted from every text the server sends back
        self.db = db
        self._timeout = timeout
        self._session = requests.Session()
        if user is not None:
            self._session.auth = (user, password or "")
        self._ready = False

    def __repr__(self) -> str:
        return f"CouchDBStatusStore(url={self.url!r}, db={self.db!r})"

    # --- HTTP ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        """One request; outages, refused credentials and server errors become one-line errors."""
        try:
            resp = self._session.request(method, f"{self.url}/{path}", timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            # The exception text is not used: it can echo request details.
            raise RefusedError(
                f"CouchDB at {self.url} is unreachable ({type(exc).__name__}) while trying to {what}"
            ) from None
        if resp.status_code == 401:
            raise RefusedError(
                f"CouchDB at {self.url} rejected the credentials (check DROPSYNC_COUCHDB_USER / "
                f"DROPSYNC_COUCHDB_PASSWORD) while trying to {what}"
            )
        if resp.status_code == 403:
            raise RefusedError(
                f"CouchDB at {self.url}: the configured user may not {what} in database {self.db}"
            )
        if resp.status_code >= 500:
            raise self._unexpected(resp, what)
        return resp

    def _unexpected(self, resp: requests.Response, what: str) -> RefusedError:
        try:
            body = resp.json()
            detail = f"{body.get('error')}: {body.get('reason')}" if isinstance(body, dict) else str(body)
        except ValueError:
            detail = resp.text
        # Redacted before it is cut, so no secret survives as a prefix; one line, whatever was sent.
        detail = " ".join(redact(detail, self._secrets).split())[:200]
        return RefusedError(f"CouchDB at {self.url} answered HTTP {resp.status_code} to {what}: {detail}")

    def _json(self, resp: requests.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise RefusedError(f"CouchDB at {self.url} answered {what} with non-JSON") from None

    def _doc_path(self, doc_id: str) -> str:
        return f"{self._dbpath()}/{quote(doc_id, safe='')}"

    def _dbpath(self) -> str:
        """The database's URL path, creating the database, indexes and views on first use."""
        if not self._ready:
            self._ensure_schema()
            self._ready = True
        return quote(self.db, safe="")

    def _ensure_schema(self) -> None:
        db = quote(self.db, safe="")
        design = self._call("GET", f"{db}/{_DESIGN}", "read the design document")
        current = self._json(design, "a design document read") if design.status_code == 200 else {}
        if current.get("schema_version") == SCHEMA_VERSION:
            return
        created = self._call("PUT", db, "create the database")
        if created.status_code not in (201, 202, 412):  # 412: it exists already
            raise self._unexpected(created, f"create database {self.db}")
        for name, fields in _MANGO_INDEXES.items():
            resp = self._call(
                "POST",
                f"{db}/_index",
                f"create index {name}",
                json={"index": {"fields": fields}, "ddoc": _MANGO_DDOC, "name": name},
            )
            if resp.status_code != 200:
                raise self._unexpected(resp, f"create index {name}")
        body: dict[str, Any] = {"views": _VIEWS, "language": "javascript", "schema_version": SCHEMA_VERSION}
        if "_rev" in current:
            body["_rev"] = current["_rev"]
        resp = self._call("PUT", f"{db}/{_DESIGN}", "write the design document", json=body)
        if resp.status_code not in (201, 202, 409):  # 409: another process wrote it meanwhile
            raise self._unexpected(resp, "write the design document")

    # --- drops ---------------------------------------------------------------------------

    def _read_drop(self, drop: str) -> dict[str, Any] | None:
        resp = self._call("GET", self._doc_path(drop), f"read drop {drop}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._unexpected(resp, f"read drop {drop}")
        return self._json(resp, f"read drop {drop}")

    def _write_drop(self, body: dict[str, Any], expected_rev: str | None) -> str | None:
        drop = body["_id"]
        doc = body if expected_rev is None else {**body, "_rev": expected_rev}
        resp = self._call("PUT", self._doc_path(drop), f"write drop {drop}", json=doc)
        if resp.status_code == 201:
            return self._json(resp, f"write drop {drop}")["rev"]
        if resp.status_code == 202:
            # Accepted below quorum: another node may hold a rival write. Only a re-read that
            # shows our rev and our owner counts as a win; anything else is a lost race.
            rev = self._json(resp, f"write drop {drop}")["rev"]
            seen = self._read_drop(drop)
            won = seen is not None and seen.get("_rev") == rev and seen.get("owner") == body.get("owner")
            return rev if won else None
        if resp.status_code == 409:
            return None
        raise self._unexpected(resp, f"write drop {drop}")

    def _create_drops(self, bodies: list[dict[str, Any]]) -> int:
        created = 0
        for start in range(0, len(bodies), _PAGE):
            for result in self._bulk(bodies[start : start + _PAGE], "register drops"):
                if result.get("ok"):
                    created += 1
                elif result.get("error") != "conflict":  # conflict: registered before, left as is
                    raise RefusedError(redact(
                        f"CouchDB at {self.url} refused drop {result.get('id')}: {result.get('error')}", self._secrets
                    ))
        return created

    def _bulk(self, docs: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        resp = self._call("POST", f"{self._dbpath()}/_bulk_docs", what, json={"docs": docs})
        if resp.status_code not in (201, 202):
            raise self._unexpected(resp, what)
        return self._json(resp, what)

    def _iter_drops(self, status: str | None) -> Iterator[dict[str, Any]]:
        selector: dict[str, Any] = {"type": "drop"}
        if status is not None:
            selector["status"] = status
        yield from self._find(selector, "list drops")

    def _find(self, selector: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
        """Every document matching a Mango selector, page by page."""
        skip = 0
        while True:
            query = {"selector": selector, "limit": _PAGE, "skip": skip}
            resp = self._call("POST", f"{self._dbpath()}/_find", what, json=query)
            if resp.status_code != 200:
                raise self._unexpected(resp, what)
            docs = self._json(resp, what)["docs"]
            yield from docs
            if len(docs) < _PAGE:
                return
            skip += len(docs)

    def _count_by_status(self) -> dict[str, int]:
        what = "count drops by status"
        resp = self._call(
            "GET", f"{self._dbpath()}/{_DESIGN}/_view/status_counts", what, params={"group": "true"}
        )
        if resp.status_code != 200:
            raise self._unexpected(resp, what)
        return {str(row["key"]): row["value"] for row in self._json(resp, what)["rows"]}

    # --- files ---------------------------------------------------------------------------

    def _read_files(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        what = "read file documents"
        for start in range(0, len(ids), _PAGE):
            resp = self._call(
                "POST",
                f"{self._dbpath()}/_all_docs",
                what,
                params={"include_docs": "true"},
                json={"keys": ids[start : start + _PAGE]},
            )
            if resp.status_code != 200:
                raise self._unexpected(resp, what)
            for row in self._json(resp, what)["rows"]:
                if row.get("doc"):  # absent: missing or deleted
                    out[row["id"]] = row["doc"]
        return out

    def _write_files(self, writes: list[tuple[dict[str, Any], str | None]]) -> set[str]:
        docs = [body if rev is None else {**body, "_rev": rev} for body, rev in writes]
        lost: set[str] = set()
        for result in self._bulk(docs, "write file documents"):
            if result.get("error") == "conflict":
                lost.add(result["id"])
            elif not result.get("ok"):
                raise RefusedError(redact(
                    f"CouchDB at {self.url} refused file {result.get('id')}: {result.get('error')}", self._secrets
                ))
        return lost

    def _find_files(self, path: str) -> list[dict[str, Any]]:
        # One indexed query per field: `$or` across fields defeats the indexes.
        return [
            doc
            for field in ("source", "target", "processed")
            for doc in self._find({field: path}, f"find file {path}")
        ]

    def _drop_files(self, drop: str) -> list[dict[str, Any]]:
        # `_id` is `<drop>:<relative path>` and a drop key holds no ':': one range of the primary index.
        what, docs, start = f"list files of {drop}", [], f"{drop}:"
        while True:
            params = {"include_docs": "true", "limit": str(_PAGE + 1), "startkey": json.dumps(start),
                      "endkey": json.dumps(f"{drop};"), "inclusive_end": "false"}
            resp = self._call("GET", f"{self._dbpath()}/_all_docs", what, params=params)
            if resp.status_code != 200:
                raise self._unexpected(resp, what)
            rows = self._json(resp, what)["rows"]
            docs += [row["doc"] for row in rows[:_PAGE] if row.get("doc")]
            if len(rows) <= _PAGE:
                return docs
            start = rows[_PAGE]["id"]
