"""A LabKey-compatible HTTP server for tests, faithful to what the `labkey` 4.4.x client speaks.

Routing, API-key auth, the CSRF flow, getQuery/selectRows and insert/update/deleteRows follow
/work/shared/spec/labkey-api.md. Tests drive it through the real client; this module also gives
them a Python API to create tables, seed and read rows, count requests and inject faults.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from dropsync_dagster_tests.support.labkey_server_http import LabKeyHandler, RequestRecord
from dropsync_dagster_tests.support.labkey_server_store import Table
from dropsync_dagster_tests.support.labkey_server_values import ApiError, ColumnDef

# lower-case "controller-action" -> the name requests are counted under
ACTIONS = {
    "login-whoami": "whoami",
    "query-getquery": "selectRows",
    "query-selectrows": "selectRows",
    "query-insertrows": "insertRows",
    "query-updaterows": "updateRows",
    "query-deleterows": "deleteRows",
}
MUTATIONS = {"insertRows": "insert", "updateRows": "update", "deleteRows": "delete"}
BAD_CSRF = ("This request has an invalid security context. You may have signed in or signed out of this "
            "session. Try again by using the 'back' and 'refresh' button in your browser.")
NO_PERMISSION = "User does not have permission to perform this operation."


@dataclass
class Fault:
    """An injected fault: `kind` is "fail" (status reply), "drop" (close without reply) or "delay".
    `after_processing`: the action is applied (a write committed) before the fault strikes."""

    kind: str
    remaining: int | None  # None: until cleared
    action: str | None = None  # None: every action
    status: int = 500
    seconds: float = 0.0
    after_processing: bool = False
    arrived: threading.Event | None = None  # "pause": set when the request is held
    release: threading.Event | None = None  # "pause": the request goes on when this is set


def _container_key(path: str) -> str:
    return "/" + path.strip("/").lower() if path.strip("/") else "/"


class LabKeyTestServer:
    """The server and its control API; start() binds 127.0.0.1 on a free port."""

    def __init__(self, api_keys: Mapping[str, str] | None = None, context_path: str | None = "labkey",
                 set_csrf_cookie: bool = True) -> None:
        self.api_keys = dict(api_keys or {"TESTKEY": "editor"})  # key -> "editor" | "reader"
        self.context_path = (context_path or "").strip("/") or None
        self.set_csrf_cookie = set_csrf_cookie
        self.lock = threading.RLock()
        self.containers: dict[str, str] = {"/": "/"}  # lower-case key -> path as created
        self.tables: dict[tuple[str, str, str], Table] = {}
        self.tokens: set[str] = set()
        self.counts: dict[str, int] = {}
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._httpd: ThreadingHTTPServer | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "LabKeyTestServer":
        """Serve in a daemon thread on a free port of 127.0.0.1."""
        handler = type("Handler", (LabKeyHandler,), {"lk": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval keeps stop() (and so every fixture teardown) fast.
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="labkey-test-server",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LabKeyTestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def domain(self) -> str:
        """`host:port` as the client's `domain` argument wants it."""
        return f"127.0.0.1:{self.port}"

    # ---- data ------------------------------------------------------------------------
    def create_table(self, container: str, schema: str, query: str,
                     columns: Sequence[ColumnDef | tuple[str, ...] | str], key: str | None = "RowId",
                     auto_key: bool = True, key_type: str = "int", result_names: str = "name") -> Table:
        """Define a table (and its container); `key` is the PK reported as `metaData.id`."""
        cols = [c if isinstance(c, ColumnDef) else ColumnDef(c) if isinstance(c, str) else ColumnDef(*c)
                for c in columns]
        if key and not any(c.name.lower() == key.lower() for c in cols):
            cols.insert(0, ColumnDef(key, type=key_type))
        with self.lock:
            parts = container.strip("/").split("/")
            for depth in range(1, len(parts) + 1):  # a folder's parents exist too
                path = "/" + "/".join(parts[:depth])
                self.containers.setdefault(_container_key(path), path)
            table = Table(container=container, schema=schema, query=query, columns=cols, key=key,
                          auto_key=auto_key, result_names=result_names)
            self.tables[(_container_key(container), schema.lower(), query.lower())] = table
            return table

    def table(self, container: str, schema: str, query: str) -> Table:
        """The table object (raises KeyError if not defined)."""
        return self.tables[(_container_key(container), schema.lower(), query.lower())]

    def insert(self, container: str, schema: str, query: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Seed rows without HTTP; returns them with their keys."""
        with self.lock:
            return [dict(r) for r in self.table(container, schema, query).insert(rows)]

    def rows(self, container: str, schema: str, query: str) -> list[dict[str, Any]]:
        """Copies of the stored rows (typed values), in key order of insertion."""
        with self.lock:
            return [{k: v for k, v in r.items() if k != "EntityId"}
                    for r in self.table(container, schema, query).rows.values()]

    # ---- counters and faults ---------------------------------------------------------
    def count(self, action: str) -> int:
        """Requests received for one action (`whoami`, `selectRows`, `insertRows`, ...)."""
        with self.lock:
            return self.counts.get(action, 0)

    def reset_counters(self) -> None:
        """Forget counts and the request log."""
        with self.lock:
            self.counts.clear()
            self.requests.clear()

    def fail_next(self, n: int, status: int = 500, action: str | None = None, after_processing: bool = False) -> None:
        """Answer the next `n` requests (of `action`, or any) with `status` and a JSON error;
        `after_processing`: the request is applied first (a write commits, then 500)."""
        with self.lock:
            self.faults.append(Fault("fail", n, action, status=status, after_processing=after_processing))

    def drop_next(self, n: int, action: str | None = None, after_processing: bool = False) -> None:
        """Close the connection without a reply for the next `n` requests, before or after acting."""
        with self.lock:
            self.faults.append(Fault("drop", n, action, after_processing=after_processing))

    def set_delay(self, seconds: float, action: str | None = None, n: int | None = None,
                  after_processing: bool = False) -> None:
        """Delay replies (of `action`, or all) by `seconds`; `n` limits it to the next n requests;
        `after_processing`: the request is applied first (a write commits, then the reply hangs)."""
        with self.lock:
            self.faults.append(Fault("delay", n, action, seconds=seconds, after_processing=after_processing))

    def pause_next(self, action: str) -> tuple[threading.Event, threading.Event]:
        """Hold the next `action` request before it is applied: returns (arrived, release); the
        request goes on once `release` is set (or after two minutes)."""
        arrived, release = threading.Event(), threading.Event()
        with self.lock:
            self.faults.append(Fault("pause", 1, action, arrived=arrived, release=release))
        return arrived, release

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, kind: str, action: str, after_processing: bool = False) -> Fault | None:
        """Consume one matching fault of `kind` for this request, if any."""
        with self.lock:
            for fault in self.faults:
                if (fault.kind == kind and fault.action in (None, action)
                        and fault.after_processing == after_processing and fault.remaining != 0):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            return None

    # ---- request handling (called from handler threads) -------------------------------
    def role(self, headers: Mapping[str, str]) -> str | None:
        """Who is asking: Basic `apikey:<key>` wins over the `apikey` header; invalid -> guest (None)."""
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
            return self.api_keys.get(password) if user == "apikey" else None
        return self.api_keys.get(headers.get("apikey", ""))

    def dispatch(self, action: str, container: str, method: str, role: str | None, csrf_ok: bool,
                 form: Mapping[str, list[str]], payload: Any, token: str) -> dict[str, Any]:
        """Run one API action; raises ApiError for every error reply."""
        if action == "whoami":
            return {"id": 1001 if role else 0, "displayName": "api test user" if role else "guest",
                    "email": "apikey@test.invalid" if role else "guest", "CSRF": token,
                    "impersonated": False, "success": True}
        if role is None:
            raise ApiError(401, NO_PERMISSION)
        if action == "selectRows":
            table = self._lookup(container, _first(form, "schemaName"), _first(form, "query.queryName"), 404)
            with self.lock:
                return table.select(form)
        if method != "POST":
            raise ApiError(405, f"Method {method} not allowed for this action")
        if role != "editor":
            raise ApiError(403, NO_PERMISSION)
        if not csrf_ok:  # the permission check runs before the CSRF check
            raise ApiError(401, BAD_CSRF)
        if not isinstance(payload, dict):
            raise ApiError(400, "Request body is not a JSON object")
        container = payload.get("containerPath") or container
        table = self._lookup(container, payload.get("schemaName"), payload.get("queryName"), 500)
        rows = payload.get("rows")
        if not isinstance(rows, list) or not rows:
            raise ApiError(400, "No 'rows' array supplied.")
        with self.lock:
            done = getattr(table, MUTATIONS[action])(rows)
            return {"schemaName": table.schema, "queryName": table.query, "command": MUTATIONS[action],
                    "containerPath": self.containers[_container_key(container)],
                    "rows": [table.result_row(r) for r in done], "rowsAffected": len(rows)}

    def _lookup(self, container: str, schema: str | None, query: str | None, status: int) -> Table:
        """Find a table; select answers 404 for unknown names, the save actions 500 (as the server does)."""
        with self.lock:
            ckey = _container_key(container)
            if not schema or not any(k[0] == ckey and k[1] == schema.lower() for k in self.tables):
                text = "The specified schema does not exist" if status == 404 else f"The schema '{schema}' does not exist."
                raise ApiError(status, text, exceptionClass="org.labkey.api.view.NotFoundException", stackTrace=[])
            table = self.tables.get((ckey, schema.lower(), (query or "").lower()))
            if table is None:
                text = (f"The specified query '{query}' does not exist in schema '{schema}'" if status == 404
                        else f"The query '{query}' in the schema '{schema}' does not exist.")
                raise ApiError(status, text, exceptionClass="org.labkey.api.view.NotFoundException", stackTrace=[])
            return table

    def route(self, raw_path: str) -> tuple[str, str] | None:
        """Map a URL path to (action, container path), or None for an unknown context/action."""
        segments = [unquote(s) for s in urlsplit(raw_path).path.split("/") if s]
        if self.context_path:
            ctx = self.context_path.split("/")
            if segments[:len(ctx)] != ctx:
                return None
            segments = segments[len(ctx):]
        if not segments or not segments[-1].lower().endswith(".api"):
            return None
        action = ACTIONS.get(segments[-1][:-len(".api")].lower())
        return (action, "/" + "/".join(segments[:-1])) if action else None

    def container_error(self, container: str) -> ApiError | None:
        """404 JSON for a container that does not exist, naming it as LabKey does."""
        with self.lock:
            if _container_key(container) in self.containers:
                return None
        parts = container.strip("/").split("/")
        if not any(k.split("/")[1:2] == [parts[0].lower()] for k in self.containers):
            return ApiError(404, f"No such project: /{parts[0]}")
        return ApiError(404, f"No such folder or workbook: {container}")


def _first(form: Mapping[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None
