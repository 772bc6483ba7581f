"""The stewardship resource: where alerts go (SMTP, webhook) and the stewardship cadence."""

from __future__ import annotations

from dropsync_dagster.core.stewardship.alerts import Channel, channels
from dropsync_dagster.core.stewardship.settings import StewardshipSettings
from dropsync_dagster.resources.env_backed import EnvBackedResource


class StewardshipResource(EnvBackedResource):
    """Alert channels; unset fields fall back to their environment variables."""

    ENV = {
        "smtp_host": "DROPSYNC_SMTP_HOST",
        "smtp_port": "DROPSYNC_SMTP_PORT",
        "smtp_from": "DROPSYNC_SMTP_FROM",
        "smtp_to": "DROPSYNC_SMTP_TO",
        "smtp_user": "DROPSYNC_SMTP_USER",
        "smtp_password": "DROPSYNC_SMTP_PASSWORD",
        "smtp_starttls": "DROPSYNC_SMTP_STARTTLS",
        "webhook_url": "DROPSYNC_ALERT_WEBHOOK_URL",
    }

    smtp_host: str | None = None
    smtp_port: str | None = None
    smtp_from: str | None = None
    smtp_to: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: str | None = None
    webhook_url: str | None = None

    def settings(self) -> StewardshipSettings:
        """The parsed, validated settings."""
        return StewardshipSettings.from_env(self.env())

    def channels(self) -> list[Channel]:
        """The configured alert channels."""
        return channels(self.settings())
