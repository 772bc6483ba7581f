"""The LabKey resource: credentials and retry settings of the deployment, nothing per drop.

Host, container, schema and table come from each drop's `sync.yml`; the API key only from here
(`LABKEY_API_KEY`, or the client's own `~/.netrc` lookup when it is unset). The key is handed to
the client and never logged or put in metadata (the UI shows the variable's name, not its value).
"""

from __future__ import annotations

from dropsync_dagster.core.labkey.connection import API_KEY_ENV, LabKeyClient, LabKeyConnection
from dropsync_dagster.core.labkey.planning import LOOKUP_BYTES, LOOKUP_VALUES, WRITE_BATCH
from dropsync_dagster.core.labkey.transport import RetryPolicy
from dropsync_dagster.core.settings import env_number
from dropsync_dagster.resources.env_backed import EnvBackedResource


class LabKeyResource(EnvBackedResource):
    """LabKey credentials and retries; unset fields fall back to their environment variables."""

    ENV = {
        "api_key": API_KEY_ENV,
        "attempts": "DROPSYNC_LABKEY_ATTEMPTS",
        "retry_delay": "DROPSYNC_LABKEY_RETRY_DELAY",
        "timeout": "DROPSYNC_LABKEY_TIMEOUT",
    }

    api_key: str | None = None
    attempts: str | None = None
    retry_delay: str | None = None
    timeout: str | None = None

    def policy(self) -> RetryPolicy:
        """Attempts per call, first backoff delay and per-request timeout (seconds)."""
        env, default = self.env(), RetryPolicy()
        return RetryPolicy(  # each value checked as at start-up: finite and in range (core/settings.py)
            attempts=int(env_number(env, "DROPSYNC_LABKEY_ATTEMPTS", default.attempts)),
            base_delay=env_number(env, "DROPSYNC_LABKEY_RETRY_DELAY", default.base_delay),
            max_delay=default.max_delay,
            timeout=env_number(env, "DROPSYNC_LABKEY_TIMEOUT", default.timeout),
        )

    def client(self, connection: LabKeyConnection) -> LabKeyClient:
        """A client for one drop's container (one per thread: it holds an HTTP session)."""
        key = (self.env().get(API_KEY_ENV) or "").strip() or None  # None: the client's ~/.netrc lookup
        return LabKeyClient(connection, api_key=key, retry=self.policy(), write_batch=WRITE_BATCH,
                            lookup_values=LOOKUP_VALUES, lookup_bytes=LOOKUP_BYTES)
