"""Secrets never leak (issue 10 item 9): text from HTTP services is redacted before it reaches an
error line. The status-store and LabKey paths are exercised against a real HTTP server that
answers every request with HTTP 500 and echoes the request back, headers and all, as a misbehaving
proxy or debug handler does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dropsync_dagster.core.errors import RefusedError
from dropsync_dagster.core.labkey.connection import LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey.transport import RetryPolicy
from dropsync_dagster.core.redact import REDACTED, redact
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore

PASSWORD = "couch-Pa55word!"
API_KEY = "apikey|0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("text", "gone"), [
    ("Authorization: Basic ZHJvcHN5bmM6c2VjcmV0", "ZHJvcHN5bmM6c2VjcmV0"),
    ('{"headers": {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"}}', "eyJhbGciOiJIUzI1NiJ9"),
    ("proxy-authorization=Digest abc123def", "abc123def"),
    ("GET /x?apikey=abcd1234&q=1", "abcd1234"),
    ("X-API-Key: k-99887766", "k-99887766"),
    ("api_key: 'zzz-111'", "zzz-111"),
    ("Cookie: JSESSIONID=ABCDEF0123; other=1", "ABCDEF0123"),
    ("password=hunter22 next", "hunter22"),
    ("tried http://dropsync:s3cr3t@couch.example:5984/dropsync", "s3cr3t"),
    ("a bare Bearer abcdefgh12345678 token", "abcdefgh12345678"),
])
def test_credentials_in_text_are_redacted(text: str, gone: str) -> None:
    out = redact(text)
    assert gone not in out and REDACTED in out


def test_configured_secrets_are_redacted_wherever_they_appear() -> None:
    text = f"reason: bad request for {PASSWORD} (sent as {PASSWORD.replace('!', '%21')})"
    out = redact(text, [PASSWORD, None, ""])
    assert PASSWORD not in out and "couch-Pa55word%21" not in out
    assert out == f"reason: bad request for {REDACTED} (sent as {REDACTED})"


def test_ordinary_messages_are_unchanged() -> None:
    for text in ("CouchDB at http://127.0.0.1:5984 rejected the credentials (check DROPSYNC_COUCHDB_USER / "
                 "DROPSYNC_COUCHDB_PASSWORD) while trying to claim",
                 "the server did not hand out a CSRF token ('CSRF'); is it a LabKey server?",
                 "LabKey failed (500) after 4 attempts: java.lang.NullPointerException"):
        assert redact(text) == text


class _Echo(BaseHTTPRequestHandler):
    """HTTP 500 to everything, the request line and headers in the body (JSON or text)."""

    as_json = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        echoed = f"{self.command} {self.path} " + " ".join(f"{k}: {v}" for k, v in self.headers.items())
        if self.as_json:
            body = json.dumps({"error": "internal", "reason": echoed, "exception": echoed}).encode()
            kind = "application/json"
        else:
            body, kind = echoed.encode(), "text/plain"
        self.send_response(500)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[True, False], ids=["json", "text"])
def echo_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _serve(request.param)


@pytest.fixture
def json_echo_server() -> Iterator[str]:
    yield from _serve(True)  # the labkey client keeps a JSON body's `exception`, drops a text body


def _serve(as_json: bool) -> Iterator[str]:
    handler = type("Echo", (_Echo,), {"as_json": as_json})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_status_server_echoing_the_authorization_header(echo_server: str) -> None:
    store = CouchDBStatusStore(f"http://dropsync:{PASSWORD}@{echo_server}", "dropsync")
    with pytest.raises(RefusedError) as info:
        store.register("seq-run1", "/drops/run1")
    message = str(info.value)
    assert "HTTP 500" in message and "uthorization" in message  # the echo reached the message...
    assert "ZHJvcHN5bmM6" not in message and PASSWORD not in message  # ...its credentials did not


def test_labkey_errors_echoing_the_api_key(json_echo_server: str) -> None:
    connection = LabKeyConnection(host=json_echo_server, container="Project", use_ssl=False)
    client = LabKeyClient(connection, api_key=API_KEY, retry=RetryPolicy(attempts=1, base_delay=0.01, timeout=5))
    with pytest.raises(RefusedError) as info:
        client.table_info("exp", "data")
    message = str(info.value)
    assert "apikey" in message.lower()  # the echo reached the message...
    assert API_KEY not in message and "0123456789abcdef" not in message  # ...the key did not
