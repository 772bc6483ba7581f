"""Calling LabKey through the official client: bounded retries, and one clear line per failure.

The `labkey` client maps replies to exceptions (spec section 4): 401 -> RequestAuthorizationError,
404 JSON -> QueryNotFoundError, 404 HTML -> ServerNotFoundError, 302 -> UnexpectedRedirectError,
everything else (other statuses, connection errors, timeouts) -> ServerContextError wrapping the
cause. This module turns those into our errors and decides what is worth retrying.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import requests
from labkey.exceptions import (
    QueryNotFoundError,
    RequestAuthorizationError,
    RequestError,
    ServerContextError,
    ServerNotFoundError,
    UnexpectedRedirectError,
)
from urllib3.exceptions import MaxRetryError, NewConnectionError

from dropsync_dagster.core.errors import ConfigError, DropsyncError, RefusedError
from dropsync_dagster.core.labkey.retry import RetryPolicy
from dropsync_dagster.core.redact import redact

log = logging.getLogger(__name__)
T = TypeVar("T")



class UnconfirmedWrite(RefusedError):
    """A write request reached LabKey and failed without proof that nothing was applied (a 5xx
    after the server may have committed, a dropped connection, a timeout). Never sent again
    blindly: the caller re-reads presence and writes only what is still missing."""


@dataclass(frozen=True)
class Failure:
    """A classified failure: `kind` is one of auth, config, client, server, unreached, ambiguous."""

    kind: str
    status: int | None
    detail: str


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _server_text(exc: RequestError) -> str:
    return str(exc.message).split(": ", 1)[-1] if getattr(exc, "message", None) else str(exc)


def _in_handshake(exc: requests.RequestException) -> bool:
    """True when the failure hit the client's CSRF handshake (whoami), so the call itself was never sent."""
    request = getattr(exc, "request", None) or getattr(getattr(exc, "response", None), "request", None)
    return "login-whoami.api" in str(getattr(request, "url", "") or "")


def _never_reached(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout) or _in_handshake(exc):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


def classify(exc: Exception, secrets: Sequence[str | None] = ()) -> Failure:
    """Sort a client exception into a failure kind with a short detail, never the credentials:
    the server's text is redacted (headers, URL user info and `secrets`, e.g. the API key)."""
    failure = _classify(exc)
    return Failure(failure.kind, failure.status, redact(failure.detail, secrets))


def _classify(exc: Exception) -> Failure:
    if isinstance(exc, RequestAuthorizationError):
        return Failure("auth", 401, _server_text(exc))
    if isinstance(exc, QueryNotFoundError):
        return Failure("config", 404, _server_text(exc))
    if isinstance(exc, ServerNotFoundError):
        return Failure("config", 404, "no LabKey API at this address (check host, context path and container)")
    if isinstance(exc, UnexpectedRedirectError):
        return Failure("config", _status(exc), str(exc.message))
    inner = exc.exception if isinstance(exc, ServerContextError) else exc
    if isinstance(inner, RequestError):
        status = _status(inner)
        text = _server_text(inner)
        if status in (401, 403):
            return Failure("auth", status, text)
        if status is not None and status >= 500:
            return Failure("unreached" if _in_handshake(inner) else "server", status, text)
        return Failure("client", status, text)
    if isinstance(inner, requests.exceptions.SSLError):
        return Failure("config", None, "TLS handshake failed (check use_ssl)")
    if isinstance(inner, requests.RequestException):
        kind = "unreached" if _never_reached(inner) else "ambiguous"
        return Failure(kind, None, type(inner).__name__ + (": timed out" if isinstance(inner, requests.Timeout) else ""))
    return Failure("client", None, str(exc))


def _retryable(failure: Failure, idempotent: bool) -> bool:
    # A 500 may follow a commit (a proxy, a failure after the transaction): only a request that
    # never reached the server is resent unless it is idempotent.
    if failure.kind == "unreached":
        return True
    return idempotent and failure.kind in ("server", "ambiguous")


def call_labkey(what: str, call: Callable[[], T], policy: RetryPolicy, credentials: str,
                idempotent: bool = True, missing_row: bool = False, secrets: Sequence[str | None] = ()) -> T:
    """Run one client call with retries; raise ConfigError/RefusedError with one line naming `what`.

    `credentials` describes where the key came from (never the key itself), for 401/403 messages.
    `missing_row`: a JSON 404 means a row is gone (updateRows), not a wrong container or table.
    `secrets` (the API key) are redacted from every message, as are headers and URL user info.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except RequestError as exc:
            failure = classify(exc, secrets)
            if missing_row and failure.kind == "config" and isinstance(exc, QueryNotFoundError):
                failure = Failure("client", 404, failure.detail)
        except KeyError as exc:
            # The client raises a bare KeyError('CSRF') when whoami answers without a token (spec 1.4).
            raise RefusedError(f"{what}: the server did not hand out a CSRF token "
                               f"({redact(str(exc), secrets)}); is it a LabKey server?") from exc
        if not _retryable(failure, idempotent) or attempt == policy.attempts:
            raise _final_error(what, failure, credentials, attempt, idempotent)
        wait = policy.delay(attempt)
        log.warning("%s failed (%s), retry %d/%d in %.2fs", what, failure.detail, attempt + 1, policy.attempts, wait)
        time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def _final_error(what: str, failure: Failure, credentials: str, attempts: int, idempotent: bool) -> DropsyncError:
    status = f" ({failure.status})" if failure.status else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if failure.kind == "auth":
        return RefusedError(f"{what}: LabKey refused the credentials{status}: {failure.detail}; using {credentials}")
    if failure.kind == "config":
        return ConfigError(f"{what}: {failure.detail}{status}")
    if failure.kind == "unreached":
        return RefusedError(f"{what}: LabKey is unreachable{tries} ({failure.detail})")
    if failure.kind in ("ambiguous", "server") and not idempotent:
        answer = f"LabKey failed{status}: {failure.detail}" if failure.kind == "server" else f"no answer from LabKey ({failure.detail})"
        return UnconfirmedWrite(f"{what}: {answer}; the write may or may not have been applied, so it is not "
                                "sent again blindly")
    if failure.kind == "ambiguous":
        return RefusedError(f"{what}: no answer from LabKey{tries} ({failure.detail})")
    return RefusedError(f"{what}: LabKey failed{status}{tries}: {failure.detail}")
