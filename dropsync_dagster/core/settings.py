"""Deployment settings from the environment: state folder, allowed roots, drop roots, readiness."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError

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
    ready_files: tuple[str, ...] = DEFAULT_READY_FILES
    quiet_seconds: float | None = None
    file_mode: int | None = None  # DROPSYNC_FILE_MODE: every repository copy gets this mode

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every DROPSYNC_* variable; a malformed value is a ConfigError naming it."""
        env = os.environ if env is None else env
        state_dir = Path(os.path.realpath(env.get("DROPSYNC_STATE_DIR") or ".dropsync"))
        allowed = tuple(
            Path(os.path.realpath(p)) for p in _split(env.get("DROPSYNC_ALLOWED_ROOTS", ""))
        )
        roots = _drop_roots(env.get("DROPSYNC_DROP_ROOTS", ""))
        ready = tuple(
            f.strip() for f in env.get("DROPSYNC_READY_FILES", ",".join(DEFAULT_READY_FILES)).split(",") if f.strip()
        )
        quiet_text = env.get("DROPSYNC_QUIET_SECONDS", "").strip()
        try:
            quiet = float(quiet_text) if quiet_text else None
        except ValueError as exc:
            raise ConfigError(f"DROPSYNC_QUIET_SECONDS: not a number: {quiet_text!r}") from exc
        return cls(state_dir, allowed, roots, ready, quiet, file_mode=_file_mode(env.get("DROPSYNC_FILE_MODE", "")))

    def check_allowed(self, path: str | Path, key: str) -> Path:
        """Refuse a `sync.yml` folder outside the allowed roots (realpath, so links can't escape)."""
        real = Path(os.path.realpath(path))
        if self.allowed_roots and not any(_within(real, root) for root in self.allowed_roots):
            roots = os.pathsep.join(map(str, self.allowed_roots))
            raise ConfigError(f"{key}: {real} is outside DROPSYNC_ALLOWED_ROOTS ({roots})")
        return real

    def check_writable(self, path: str | Path, key: str) -> Path:
        """Like check_allowed, and also refuse when no allowed roots are configured at all."""
        if not self.allowed_roots:
            raise ConfigError(f"{key}: refusing to write: DROPSYNC_ALLOWED_ROOTS is not set")
        return self.check_allowed(path, key)

    def drop_dir(self, key: str) -> Path:
        """Folder for this drop's results between assets (human-readable JSON)."""
        return self.state_dir / "drops" / key


def _split(value: str) -> list[str]:
    return [p for p in value.split(os.pathsep) if p.strip()]


def _drop_roots(value: str) -> tuple[DropRoot, ...]:
    roots: list[DropRoot] = []
    for entry in _split(value):
        name, sep, path = entry.partition("=")
        if not sep or os.sep in name:  # a bare path, which may itself contain '='
            name, path = "", entry
        real = Path(os.path.realpath(path.strip()))
        roots.append(DropRoot(name.strip() or real.name, real))
    names = [r.name for r in roots]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"DROPSYNC_DROP_ROOTS: two roots are named '{dup}'; name them 'name=path'")
    return tuple(roots)


def _file_mode(value: str) -> int | None:
    """DROPSYNC_FILE_MODE as permission bits (octal, e.g. 0640); unset: copies keep the source's."""
    text = value.strip()
    if not text:
        return None
    try:
        mode = int(text, 8)
    except ValueError as exc:
        raise ConfigError(f"DROPSYNC_FILE_MODE: not an octal file mode: {text!r}") from exc
    if not 0 <= mode <= 0o777:
        raise ConfigError(f"DROPSYNC_FILE_MODE: {text!r} is not a mode between 0 and 0777 (no set-id or sticky bits)")
    return mode


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
