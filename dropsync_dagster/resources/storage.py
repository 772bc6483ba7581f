"""Deployment settings as a resource: state folder, allowed roots, drop roots, readiness."""

from __future__ import annotations

from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.env_backed import EnvBackedResource


class StorageResource(EnvBackedResource):
    """Where drops come from and where sync.yml may write; unset fields fall back to DROPSYNC_*."""

    ENV = {
        "state_dir": "DROPSYNC_STATE_DIR",
        "allowed_roots": "DROPSYNC_ALLOWED_ROOTS",
        "drop_roots": "DROPSYNC_DROP_ROOTS",
        "ready_files": "DROPSYNC_READY_FILES",
        "quiet_seconds": "DROPSYNC_QUIET_SECONDS",
    }

    state_dir: str | None = None
    allowed_roots: str | None = None
    drop_roots: str | None = None
    ready_files: str | None = None
    quiet_seconds: str | None = None

    def settings(self) -> Settings:
        """The parsed, validated deployment settings."""
        return Settings.from_env(self.env())
