"""Alerts to people: one message per event, by email (SMTP) and by webhook (Slack-compatible
`{"text": ...}`), delivered from an outbox that survives between sensor ticks.

Each event has a key; a message is sent once per channel. A channel that fails keeps the message
in the outbox (its error is returned, for the log) and the next tick tries that channel again;
after MAX_ATTEMPTS failed tries the message is given up, loudly. The outbox is small JSON: it
travels in the sensor's cursor.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from typing import Protocol

import requests
from pydantic import BaseModel, ConfigDict

from dropsync_dagster.core.stewardship.settings import SmtpSettings, StewardshipSettings

MAX_ATTEMPTS = 5  # failed tries per message and channel before it is given up (and logged)
SEND_TIMEOUT = 10.0  # seconds per SMTP conversation or webhook POST


class AlertDeliveryError(Exception):
    """A channel could not deliver a message; the text names the channel and the event."""


class Alert(BaseModel):
    """One event worth a message: `key` identifies it, so it is sent once."""

    model_config = ConfigDict(frozen=True)

    key: str
    subject: str
    text: str


class Channel(Protocol):
    """Where alerts go."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver `alert` or raise AlertDeliveryError."""


class EmailChannel:
    """One email per alert to every recipient, through the deployment's SMTP relay."""

    name = "email"

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def send(self, alert: Alert) -> None:
        """Send, with STARTTLS and login when configured; any SMTP or socket error is a delivery error."""
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = alert.subject, self.smtp.sender, ", ".join(self.smtp.recipients)
        message.set_content(alert.text)
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=SEND_TIMEOUT) as relay:
                if self.smtp.starttls:
                    relay.starttls()
                if self.smtp.user and self.smtp.password:
                    relay.login(self.smtp.user, self.smtp.password)
                relay.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertDeliveryError(f"email via {self.smtp.host}:{self.smtp.port} for {alert.key}: {exc}") from exc


class WebhookChannel:
    """A Slack-compatible incoming webhook: POST `{"text": subject + text}`."""

    name = "webhook"

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, alert: Alert) -> None:
        """POST the alert; a non-2xx answer or a connection error is a delivery error (URL not shown: it holds a token)."""
        try:
            resp = requests.post(self.url, json={"text": f"{alert.subject}\n{alert.text}"}, timeout=SEND_TIMEOUT)
        except requests.RequestException as exc:
            raise AlertDeliveryError(f"webhook for {alert.key}: {type(exc).__name__}") from exc
        if not 200 <= resp.status_code < 300:
            raise AlertDeliveryError(f"webhook for {alert.key}: HTTP {resp.status_code}")


def channels(settings: StewardshipSettings) -> list[Channel]:
    """The configured channels (none: alerts are only logged)."""
    out: list[Channel] = []
    if settings.smtp is not None:
        out.append(EmailChannel(settings.smtp))
    if settings.webhook_url:
        out.append(WebhookChannel(settings.webhook_url))
    return out


class Pending(BaseModel):
    """A message not yet delivered on every channel."""

    alert: Alert
    channels: list[str]  # still to deliver to
    attempts: int = 0  # failed tries so far (the worst channel's)


class Mark(BaseModel):
    """A source as last read (its `stamp`, e.g. a document's update time) and the alert key it gave:
    while the stamp is the same, the key is reused instead of read again."""

    stamp: str
    key: str


class Outbox(BaseModel):
    """Undelivered messages, the keys already delivered (state-based events), an event-log cursor,
    and marks of the sources read (state-based events)."""

    pending: dict[str, Pending] = {}
    delivered: list[str] = []
    after: str | None = None
    marks: dict[str, Mark] = {}
    alerted_ids: list[int] = []  # events beyond `after` already alerted (they may change below it)


class Delivery(BaseModel):
    """What one round of delivery did."""

    outbox: Outbox
    sent: list[str] = []  # keys delivered on every channel in this round
    errors: list[str] = []  # one line per failed try (retried next tick)
    given_up: list[str] = []  # keys dropped after MAX_ATTEMPTS failed tries


def enqueue(outbox: Outbox, alerts: Iterable[Alert], on: Iterable[Channel]) -> Outbox:
    """`outbox` with `alerts` added for every channel, unless already pending or delivered."""
    names = [c.name for c in on]
    pending = dict(outbox.pending)
    for alert in alerts:
        if alert.key not in pending and alert.key not in outbox.delivered:
            pending[alert.key] = Pending(alert=alert, channels=names)
    return outbox.model_copy(update={"pending": pending})


def deliver(outbox: Outbox, on: Iterable[Channel], max_attempts: int = MAX_ATTEMPTS) -> Delivery:
    """Try every pending message on each channel it still needs; failures stay pending (bounded)."""
    by_name: Mapping[str, Channel] = {c.name: c for c in on}
    pending, delivered = {}, list(outbox.delivered)
    sent, errors, given_up = [], [], []
    for key, item in outbox.pending.items():
        left = []
        for name in item.channels:
            channel = by_name.get(name)
            if channel is None:
                continue  # a channel configured when the message was queued, removed since
            try:
                channel.send(item.alert)
            except AlertDeliveryError as exc:
                errors.append(str(exc))
                left.append(name)
        if not left:
            sent.append(key)
            delivered.append(key)
        elif item.attempts + 1 >= max_attempts:
            given_up.append(key)
            delivered.append(key)  # never resent: the log holds the error
        else:
            pending[key] = item.model_copy(update={"channels": left, "attempts": item.attempts + 1})
    return Delivery(outbox=outbox.model_copy(update={"pending": pending, "delivered": delivered}),
                    sent=sent, errors=errors, given_up=given_up)


def forget_except(outbox: Outbox, current: Iterable[str]) -> Outbox:
    """`outbox` remembering as delivered only the `current` keys: an event that ended and comes
    back later is a new event, and the cursor stays small."""
    keep = set(current)
    return outbox.model_copy(update={"delivered": [k for k in outbox.delivered if k in keep]})
