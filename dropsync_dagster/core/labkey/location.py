"""Where a drop's LabKey lives: host, container and table from sync.yml, without credentials.

Kept apart from the client (connection.py) so that planning a drop without LabKey never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from dropsync_dagster.core.errors import ConfigError


@dataclass(frozen=True)
class LabKeyConnection:
    """Where a drop's LabKey lives: the `labkey:` section of sync.yml, without credentials."""

    host: str  # host[:port]
    container: str  # container path; may contain '/' and spaces
    context: str | None = None
    use_ssl: bool = True
    schema: str | None = None
    table: str | None = None

    @classmethod
    def from_section(cls, section: Mapping[str, Any], where: str = "labkey") -> "LabKeyConnection":
        """Build from a `labkey:` mapping; missing host/container or a dotted schema -> ConfigError."""
        for key in ("host", "container"):
            if not str(section.get(key) or "").strip():
                raise ConfigError(f"{where}.{key} is required")
        schema = section.get("schema")
        if schema is not None and "." in str(schema):
            raise ConfigError(f"{where}.schema must be a schema name without dots, got '{schema}'")
        return cls(host=str(section["host"]).strip(), container=str(section["container"]),
                   context=section.get("context") or None,
                   use_ssl=section.get("use_ssl") is not False,  # absent or None: the default, https
                   schema=str(schema) if schema is not None else None,
                   table=str(section["table"]) if section.get("table") is not None else None)

    def overridden(self, overrides: Mapping[str, Any]) -> "LabKeyConnection":
        """This connection with host/container/context/use_ssl replaced where `overrides` names them."""
        keys = ("host", "container", "context", "use_ssl")
        return replace(self, **{k: overrides[k] for k in keys if overrides.get(k) is not None})

    @property
    def url(self) -> str:
        """Base URL of the container, for messages (holds no credentials)."""
        parts = [self.host, (self.context or "").strip("/"), self.container.strip("/")]
        return ("https://" if self.use_ssl else "http://") + "/".join(p for p in parts if p)
