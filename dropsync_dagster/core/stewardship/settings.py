"""Stewardship settings of the deployment: where alerts go (SMTP, webhook), when the stewardship
job runs and how much a fixity audit re-reads. Read from the environment by
`dropsync_dagster.deployment.stewardship`; here only their typed shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CRON = "0 6 * * *"  # the stewardship job (report + reconciliation): daily at 06:00
DEFAULT_SMTP_PORT = 25
DEFAULT_AUDIT_CRON = "0 3 * * *"  # the fixity audit: daily at 03:00


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


class AuditSettings(BaseModel):
    """When the scheduled fixity audit runs, the fraction of each drop it re-reads, and whether it
    decrypts the archive generations (the keyring must then hold a recipient's secret key)."""

    model_config = ConfigDict(frozen=True)

    cron: str = DEFAULT_AUDIT_CRON
    sample: float = 1.0
    archives: bool = True
