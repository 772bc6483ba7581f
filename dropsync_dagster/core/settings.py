"""Deployment settings: state folder, allowed roots, drop roots, readiness, file mode.

Read from the environment and checked by `dropsync_dagster.deployment`; core takes them typed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.drops.layout import inside

DEFAULT_READY_FILES = (".ready", ".metadata_rsync_exitcode")


@dataclass(frozen=True)
class DropRoot:
    """A folder whose immediate sub-folders are drops; `name` prefixes their partition keys."""

    name: str
    path: Path


@dataclass(frozen=True)
class Settings:
    """The deployment: what `sync.yml` can never widen."""

    state_dir: Path
    allowed_roots: tuple[Path, ...]
    drop_roots: tuple[DropRoot, ...]
    metadata_roots: tuple[Path, ...] = ()
    ready_files: tuple[str, ...] = DEFAULT_READY_FILES
    quiet_seconds: float | None = None
    file_mode: int | None = None  # DROPSYNC_FILE_MODE: every repository copy gets this mode
    quarantine_dir: Path | None = None  # DROPSYNC_QUARANTINE_DIR: held originals move here (None: off)

    def check_allowed(self, path: str | Path, key: str) -> Path:
        """Refuse a `sync.yml` folder outside the allowed roots (realpath, so links can't escape)."""
        real = Path(os.path.realpath(path))
        if self.allowed_roots and not any(inside(real, root) for root in self.allowed_roots):
            roots = os.pathsep.join(map(str, self.allowed_roots))
            raise ConfigError(f"{key}: {real} is outside DROPSYNC_ALLOWED_ROOTS ({roots})")
        return real

    def check_writable(self, path: str | Path, key: str) -> Path:
        """Like check_allowed, and also refuse when no allowed roots are configured at all."""
        if not self.allowed_roots:
            raise ConfigError(f"{key}: refusing to write: DROPSYNC_ALLOWED_ROOTS is not set")
        return self.check_allowed(path, key)

    def metadata_readable(self) -> tuple[Path, ...]:
        """Where CSV/Excel metadata may be read besides the drop itself: allowed and metadata roots."""
        return (*self.allowed_roots, *self.metadata_roots)

    def drop_dir(self, key: str) -> Path:
        """Folder for this drop's results between assets (human-readable JSON)."""
        return self.state_dir / "drops" / key
