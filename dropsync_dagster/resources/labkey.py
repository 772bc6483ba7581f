"""The LabKey resource: credentials and retry settings of the deployment, nothing per drop.

Host, container, schema and table come from each drop's `sync.yml`; the API key only from here
(`LABKEY_API_KEY`, or the client's own `~/.netrc` lookup when it is unset). The key is handed to
the client and never logged or put in metadata (the UI shows the variable's name, not its value).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from dropsync_dagster.core.labkey.connection import LabKeyClient, LabKeyConnection
from dropsync_dagster.deployment import LabKeyAccess

_DEFAULT = LabKeyAccess()


class LabKeyResource(dg.ConfigurableResource):
    """LabKey credentials and retries."""

    api_key: str | None = Field(default=None, description="LABKEY_API_KEY (bound as an EnvVar; unset: ~/.netrc)")
    attempts: int = Field(default=_DEFAULT.attempts, description="DROPSYNC_LABKEY_ATTEMPTS: tries per call")
    retry_delay: float = Field(default=_DEFAULT.retry_delay, description="DROPSYNC_LABKEY_RETRY_DELAY: first backoff, s")
    timeout: float = Field(default=_DEFAULT.timeout, description="DROPSYNC_LABKEY_TIMEOUT: per request, s")

    def access(self) -> LabKeyAccess:
        """The typed values the CLI builds from the environment too."""
        return LabKeyAccess((self.api_key or "").strip() or None, self.attempts, self.retry_delay, self.timeout)

    def client(self, connection: LabKeyConnection) -> LabKeyClient:
        """A client for one drop's container (one per thread: it holds an HTTP session)."""
        return self.access().client(connection)
