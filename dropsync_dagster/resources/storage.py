"""Deployment settings as a resource: state folder, allowed roots, drop roots, readiness."""

from __future__ import annotations

import os

import dagster as dg

from dropsync_dagster.core.results import ResultStore
from dropsync_dagster.core.settings import Settings

_ENV = {
    "state_dir": "DROPSYNC_STATE_DIR",
    "allowed_roots": "DROPSYNC_ALLOWED_ROOTS",
    "drop_roots": "DROPSYNC_DROP_ROOTS",
    "ready_files": "DROPSYNC_READY_FILES",
    "quiet_seconds": "DROPSYNC_QUIET_SECONDS",
}


class StorageResource(dg.ConfigurableResource):
    """Where drops come from and where sync.yml may write; unset fields fall back to DROPSYNC_*."""

    state_dir: str | None = None
    allowed_roots: str | None = None
    drop_roots: str | None = None
    ready_files: str | None = None
    quiet_seconds: str | None = None

    @classmethod
    def from_env(cls) -> StorageResource:
        """Bind each field to its environment variable, so the UI shows where it came from."""
        return cls(**{f: dg.EnvVar(v) for f, v in _ENV.items() if os.environ.get(v)})

    def settings(self) -> Settings:
        """The parsed, validated deployment settings."""
        env = dict(os.environ)
        env.update({_ENV[f]: v for f, v in self.model_dump().items() if f in _ENV and v is not None})
        return Settings.from_env(env)

    def results(self) -> ResultStore:
        """The store of between-asset JSON results."""
        return ResultStore(self.settings().state_dir)
