"""The stewardship resource: where alerts go, by email (SMTP) and by webhook."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from dropsync_dagster.core.stewardship.alerts import Channel, channels
from dropsync_dagster.core.stewardship.settings import DEFAULT_SMTP_PORT, SmtpSettings, StewardshipSettings


class StewardshipResource(dg.ConfigurableResource):
    """Alert channels of the deployment (none configured: alerts are only logged)."""

    smtp_host: str | None = Field(default=None, description="DROPSYNC_SMTP_HOST (unset: no email)")
    smtp_port: int = Field(default=DEFAULT_SMTP_PORT, description="DROPSYNC_SMTP_PORT")
    smtp_from: str | None = Field(default=None, description="DROPSYNC_SMTP_FROM")
    smtp_to: list[str] = Field(default_factory=list, description="DROPSYNC_SMTP_TO (comma-separated)")
    smtp_user: str | None = Field(default=None, description="DROPSYNC_SMTP_USER")
    smtp_password: str | None = Field(default=None, description="DROPSYNC_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, description="DROPSYNC_SMTP_STARTTLS")
    webhook_url: str | None = Field(default=None, description="DROPSYNC_ALERT_WEBHOOK_URL (Slack-compatible JSON)")

    @classmethod
    def of(cls, settings: StewardshipSettings, **secrets: object) -> StewardshipResource:
        """The resource holding a deployment's alert channels; `secrets` (smtp_password,
        webhook_url) may be dg.EnvVars so the UI shows their variables, never their values."""
        smtp = settings.smtp
        fields = {"webhook_url": settings.webhook_url}
        if smtp is not None:
            fields.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_from=smtp.sender, smtp_to=list(smtp.recipients),
                          smtp_user=smtp.user, smtp_password=smtp.password, smtp_starttls=smtp.starttls)
        return cls(**{**fields, **{k: v for k, v in secrets.items() if v is not None}})

    def settings(self) -> StewardshipSettings:
        """The channels as the core's settings."""
        smtp = None
        if self.smtp_host:
            smtp = SmtpSettings(host=self.smtp_host, port=self.smtp_port, sender=self.smtp_from or "",
                                recipients=tuple(self.smtp_to), user=self.smtp_user, password=self.smtp_password,
                                starttls=self.smtp_starttls)
        return StewardshipSettings(smtp=smtp, webhook_url=self.webhook_url)

    def channels(self) -> list[Channel]:
        """The configured alert channels."""
        return channels(self.settings())
