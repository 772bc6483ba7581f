"""Redacting credentials from text that came from (or describes) an HTTP service.

A server's error body may echo the request, headers included (a proxy's 502 page, a debug
handler, a CouchDB `reason`), and a URL may carry `user:password@`. Every such text is passed
through `redact` before it reaches stderr, a log, the Dagster event log or a status document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "***"

# `Authorization: Basic abc`, `"authorization": "Bearer abc"`, `apikey=abc`, `X-API-Key: abc`,
# `password=abc`, `token: abc` - the scheme word is kept, the value is not.
_HEADER = re.compile(
    r"""(?ix)
    (?P<name>\b(?:proxy-)?authorization|\bx-api-key|\bapi[-_]?key|\bpassword|\bpasswd|\bsecret|
              \baccess[-_]?token|\btoken|\bcookie|\bset-cookie)
    (?P<sep>["']?\s*[:=]\s*["']?)
    (?:(?P<scheme>basic|bearer|digest|token)\s+)?
    (?P<value>[^\s"',;&}]+)
    """
)
_SCHEME = re.compile(r"(?i)\b(?P<scheme>basic|bearer)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_URL_USERINFO = re.compile(r"(?i)\b(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with credentials replaced by ***: header and parameter values (Authorization, Basic,
    Bearer, apikey, password, token, cookie), `user:password@` in URLs, and every one of `secrets`
    (the configured password and API key) wherever it appears, also URL-encoded."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        for form in {secret, _quoted(secret)}:
            text = text.replace(form, REDACTED)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _HEADER.sub(_header_value, text)
    return _SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


def _header_value(found: re.Match[str]) -> str:
    scheme = f"{found['scheme']} " if found["scheme"] else ""
    return f"{found['name']}{found['sep']}{scheme}{REDACTED}"


def _quoted(secret: str) -> str:
    return quote(secret, safe="")
