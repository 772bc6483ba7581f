"""Deployment settings as a resource: state folder, allowed roots, drop roots, readiness."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from dropsync_dagster.core.settings import DEFAULT_READY_FILES, Settings
from dropsync_dagster.deployment import settings_of


class StorageResource(dg.ConfigurableResource):
    """Where drops come from and where sync.yml may write (every root checked when used)."""

    state_dir: str = Field(description="DROPSYNC_STATE_DIR")
    allowed_roots: list[str] = Field(default_factory=list, description="DROPSYNC_ALLOWED_ROOTS")
    drop_roots: dict[str, str] = Field(default_factory=dict, description="DROPSYNC_DROP_ROOTS: name -> folder")
    metadata_roots: list[str] = Field(default_factory=list, description="DROPSYNC_METADATA_ROOTS")
    ready_files: list[str] = Field(default_factory=lambda: list(DEFAULT_READY_FILES), description="DROPSYNC_READY_FILES")
    quiet_seconds: float | None = Field(default=None, description="DROPSYNC_QUIET_SECONDS")
    file_mode: int | None = Field(default=None, description="DROPSYNC_FILE_MODE (as a number; unset: the source's)")
    quarantine_dir: str | None = Field(default=None, description="DROPSYNC_QUARANTINE_DIR (unset: integrity-held files stay in the drop)")

    @classmethod
    def of(cls, settings: Settings) -> StorageResource:
        """The resource holding these settings."""
        return cls(
            state_dir=str(settings.state_dir),
            allowed_roots=[str(p) for p in settings.allowed_roots],
            drop_roots={r.name: str(r.path) for r in settings.drop_roots},
            metadata_roots=[str(p) for p in settings.metadata_roots],
            ready_files=list(settings.ready_files),
            quiet_seconds=settings.quiet_seconds,
            file_mode=settings.file_mode,
            quarantine_dir=None if settings.quarantine_dir is None else str(settings.quarantine_dir),
        )

    def settings(self) -> Settings:
        """The validated deployment settings."""
        return settings_of(self.state_dir, self.allowed_roots, self.drop_roots, self.metadata_roots,
                           self.ready_files, self.quiet_seconds, self.file_mode, self.quarantine_dir)
