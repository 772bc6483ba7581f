"""Stewardship settings from the environment: alert channels (DROPSYNC_SMTP_*, the webhook), the
stewardship job's cron and the fixity audit's cron, sample and archive switch. A malformed value
is a ConfigError of one line naming its variable, raised when the code location loads."""

from __future__ import annotations

from collections.abc import Mapping

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.stewardship.settings import (
    DEFAULT_AUDIT_CRON, DEFAULT_CRON, DEFAULT_SMTP_PORT, AuditSettings, SmtpSettings, StewardshipSettings,
)
from dropsync_dagster.core.stewardship.verify import parse_fraction
from dropsync_dagster.deployment.values import env_switch


def stewardship_from_env(env: Mapping[str, str]) -> StewardshipSettings:
    """DROPSYNC_SMTP_* (HOST, PORT, FROM, TO, USER, PASSWORD, STARTTLS), DROPSYNC_ALERT_WEBHOOK_URL
    and DROPSYNC_STEWARDSHIP_CRON."""
    return StewardshipSettings(smtp=_smtp(env), webhook_url=_webhook(env),
                               cron=_cron(env, "DROPSYNC_STEWARDSHIP_CRON", DEFAULT_CRON))


def audit_from_env(env: Mapping[str, str]) -> AuditSettings:
    """DROPSYNC_AUDIT_CRON, DROPSYNC_AUDIT_SAMPLE (a fraction in (0, 1]) and DROPSYNC_AUDIT_ARCHIVES."""
    archives = env_switch(env, "DROPSYNC_AUDIT_ARCHIVES")
    return AuditSettings(cron=_cron(env, "DROPSYNC_AUDIT_CRON", DEFAULT_AUDIT_CRON),
                         sample=parse_fraction(_value(env, "DROPSYNC_AUDIT_SAMPLE") or "1", "DROPSYNC_AUDIT_SAMPLE"),
                         archives=True if archives is None else archives)


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
    starttls = env_switch(env, "DROPSYNC_SMTP_STARTTLS")
    user = _value(env, "DROPSYNC_SMTP_USER") or None
    password = env.get("DROPSYNC_SMTP_PASSWORD") or None
    if (user is None) != (password is None):
        raise ConfigError("DROPSYNC_SMTP_USER and DROPSYNC_SMTP_PASSWORD: set both or neither")
    return SmtpSettings(host=host, port=int(port_text), sender=sender, recipients=recipients, user=user,
                        password=password, starttls=bool(starttls))


def _webhook(env: Mapping[str, str]) -> str | None:
    url = _value(env, "DROPSYNC_ALERT_WEBHOOK_URL")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("DROPSYNC_ALERT_WEBHOOK_URL: not an http(s) URL")  # the URL may hold a token
    return url or None


def _cron(env: Mapping[str, str], name: str, default: str) -> str:
    cron = _value(env, name) or default
    if len(cron.split()) != 5:
        raise ConfigError(f"{name}: {cron!r} is not a cron expression of five fields")
    return cron
