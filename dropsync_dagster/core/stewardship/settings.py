"""Stewardship settings of the deployment: where alerts go (SMTP, webhook) and when the
stewardship job runs. One function reads them all from the environment; a bad value is one line
naming its variable (ConfigError), raised when the definitions load."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pydantic import BaseModel, ConfigDict, Field

from dropsync_dagster.core.errors import ConfigError

DEFAULT_CRON = "0 6 * * *"  # the stewardship job (report + reconciliation): daily at 06:00
DEFAULT_SMTP_PORT = 25
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class SmtpSettings(BaseModel):
    """The mail relay alerts go through, and who gets them (the password is never shown)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    starttls: bool = False


class StewardshipSettings(BaseModel):
    """Alert channels (none configured: alerts are only logged) and the stewardship cadence."""

    model_config = ConfigDict(frozen=True)

    smtp: SmtpSettings | None = None
    webhook_url: str | None = None
    cron: str = DEFAULT_CRON

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StewardshipSettings:
        """DROPSYNC_SMTP_* (HOST, PORT, FROM, TO, USER, PASSWORD, STARTTLS), DROPSYNC_ALERT_WEBHOOK_URL,
        DROPSYNC_STEWARDSHIP_CRON; a malformed value is a ConfigError naming its variable."""
        env = os.environ if env is None else env
        return cls(smtp=_smtp(env), webhook_url=_webhook(env), cron=_cron(env))


def _value(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    host = _value(env, "DROPSYNC_SMTP_HOST")
    if not host:
        return None
    port_text = _value(env, "DROPSYNC_SMTP_PORT") or str(DEFAULT_SMTP_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"DROPSYNC_SMTP_PORT: {port_text!r} is not a port number (1-65535)")
    sender = _value(env, "DROPSYNC_SMTP_FROM")
    recipients = tuple(r.strip() for r in _value(env, "DROPSYNC_SMTP_TO").split(",") if r.strip())
    for name, found in (("DROPSYNC_SMTP_FROM", bool(sender)), ("DROPSYNC_SMTP_TO", bool(recipients))):
        if not found:
            raise ConfigError(f"{name}: must be set when DROPSYNC_SMTP_HOST is ({host})")
    for address in (sender, *recipients):
        if "@" not in address:
            raise ConfigError(f"DROPSYNC_SMTP_FROM/DROPSYNC_SMTP_TO: {address!r} is not a mail address")
    starttls = _value(env, "DROPSYNC_SMTP_STARTTLS").lower()
    if starttls not in _TRUE + _FALSE:
        raise ConfigError(f"DROPSYNC_SMTP_STARTTLS: {starttls!r} is not true or false")
    user = _value(env, "DROPSYNC_SMTP_USER") or None
    password = env.get("DROPSYNC_SMTP_PASSWORD") or None
    if (user is None) != (password is None):
        raise ConfigError("DROPSYNC_SMTP_USER and DROPSYNC_SMTP_PASSWORD: set both or neither")
    return SmtpSettings(host=host, port=int(port_text), sender=sender, recipients=recipients, user=user,
                        password=password, starttls=starttls in _TRUE)


def _webhook(env: Mapping[str, str]) -> str | None:
    url = _value(env, "DROPSYNC_ALERT_WEBHOOK_URL")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("DROPSYNC_ALERT_WEBHOOK_URL: not an http(s) URL")  # the URL may hold a token
    return url or None


def _cron(env: Mapping[str, str]) -> str:
    cron = _value(env, "DROPSYNC_STEWARDSHIP_CRON") or DEFAULT_CRON
    if len(cron.split()) != 5:
        raise ConfigError(f"DROPSYNC_STEWARDSHIP_CRON: {cron!r} is not a cron expression of five fields")
    return cron
