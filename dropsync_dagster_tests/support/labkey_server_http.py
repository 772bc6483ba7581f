"""The HTTP side of the LabKey test server: parse a request, apply faults, reply as LabKey does.

Auth headers, the CSRF cookie/header pair and the reply shapes follow
/work/shared/spec/labkey-api.md sections 1 and 4; actions are run by `LabKeyTestServer.dispatch`.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from dropsync_dagster_tests.support.labkey_server_values import ApiError

if TYPE_CHECKING:
    from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

CSRF_NAME = "X-LABKEY-CSRF"


@dataclass
class RequestRecord:
    """One request as the server saw it, for assertions on batching and payload sizes."""

    method: str
    path: str
    action: str
    container: str | None
    body_bytes: int
    status: int | None = None
    form: dict[str, list[str]] = field(default_factory=dict)
    payload: Any = None
    client_gone: bool = False  # the client had closed the connection before the reply was written


class LabKeyHandler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection; `lk` (set per server) owns the data, auth and faults."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's session expects
    lk: LabKeyTestServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's
        # delayed ACK would add ~40 ms to every reply.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logging
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self._handle("POST")

    def _handle(self, method: str) -> None:
        lk = self.lk
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        routed = lk.route(self.path)
        action = routed[0] if routed else "unknown"
        record = RequestRecord(method, self.path, action, routed[1] if routed else None, len(body))
        with lk.lock:
            lk.counts[action] = lk.counts.get(action, 0) + 1
            lk.requests.append(record)
        delay = lk.take_fault("delay", action)
        if delay is not None:
            time.sleep(delay.seconds)
        pause = lk.take_fault("pause", action)
        if pause is not None and pause.arrived is not None and pause.release is not None:
            pause.arrived.set()
            pause.release.wait(120)
        if lk.take_fault("drop", action) is not None:
            self.close_connection = True  # no reply at all: the client sees the connection drop
            return
        if routed is None:
            self._reply(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html", record)
            return
        token, new_cookie, csrf_ok = self._csrf(record, body)
        try:
            failure = lk.take_fault("fail", action)
            if failure is not None:
                raise ApiError(failure.status, f"Injected failure ({failure.status})")
            error = lk.container_error(routed[1])
            if error is not None:
                raise error
            reply = lk.dispatch(action, routed[1], method, lk.role(self.headers), csrf_ok, record.form,
                                record.payload, token)
            status, data = 200, reply
        except ApiError as exc:
            status, data = exc.status, exc.body
        late = lk.take_fault("fail", action, after_processing=True)
        if late is not None:  # the action was applied; the reply says it failed
            status, data = late.status, ApiError(late.status, f"Injected failure after commit ({late.status})").body
        hang = lk.take_fault("delay", action, after_processing=True)
        if hang is not None:  # applied; the reply comes after the client may have given up
            time.sleep(hang.seconds)
        if lk.take_fault("drop", action, after_processing=True) is not None:
            self.close_connection = True
            return
        self._reply(status, json.dumps(data).encode("utf-8"), "application/json", record, new_cookie)

    def _csrf(self, record: RequestRecord, body: bytes) -> tuple[str, str | None, bool]:
        """Parse the body into `record`; return (this session's token, cookie to set, token sent and valid)."""
        lk = self.lk
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        cookie_token = cookie[CSRF_NAME].value if CSRF_NAME in cookie else None
        token = cookie_token if cookie_token in lk.tokens else None
        new_cookie = None
        if token is None:  # like AuthFilter: every request without a valid cookie gets a fresh token
            token = secrets.token_hex(32)
            with lk.lock:
                lk.tokens.add(token)
            new_cookie = token if lk.set_csrf_cookie else None
        record.form = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        if "json" in self.headers.get("Content-Type", ""):
            try:
                record.payload = json.loads(body or b"null")
            except ValueError:
                record.payload = None  # dispatch answers 400 for a body that is not a JSON object
        elif body:
            for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                record.form.setdefault(key, []).extend(values)
        sent = self.headers.get(CSRF_NAME) or (record.form.get(CSRF_NAME) or [None])[0]
        valid = sent is not None and sent in lk.tokens and (cookie_token is None or cookie_token == sent)
        return token, new_cookie, valid

    def _reply(self, status: int, body: bytes, ctype: str, record: RequestRecord, cookie: str | None = None) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if cookie is not None:
            path = "/" + self.lk.context_path if self.lk.context_path else "/"
            self.send_header("Set-Cookie", f"{CSRF_NAME}={cookie}; Path={path}")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="LabKey Test Server"')
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout): a real server's write fails the same way; note it.
            record.client_gone = True
            self.close_connection = True
