"""Real receivers for alerts, on 127.0.0.1: an SMTP server (aiosmtpd) and a webhook endpoint
(http.server in a thread) that records each JSON body and can answer errors on demand.

    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        ...                      # point DROPSYNC_SMTP_HOST/PORT and the webhook URL at them
        smtp.messages            # email.message.EmailMessage objects, in arrival order
        hook.bodies              # parsed JSON bodies of successful POSTs
        hook.fail_next(2)        # the next two POSTs get HTTP 500 (counted in hook.attempts)
"""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpReceiver:
    """An SMTP server that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's handler hook
        """Keep the message; 250 tells the client it was accepted."""
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


class WebhookReceiver:
    """A webhook endpoint: records JSON bodies; `fail_next(n)` answers the next n POSTs with 500."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self._failures = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    failing = receiver._failures > 0
                    receiver._failures -= failing
                    if not failing:
                        receiver.bodies.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"ok" if not failing else b"down")

            def log_message(self, *args: object) -> None:
                pass  # keep the test output clean; bodies and attempts are recorded above

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The endpoint's URL (as DROPSYNC_ALERT_WEBHOOK_URL)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/dropsync"

    def fail_next(self, n: int) -> None:
        """Answer the next `n` POSTs with HTTP 500."""
        with self._lock:
            self._failures = n

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
