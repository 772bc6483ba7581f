"""Deployment settings from the environment: state folder, allowed roots, drop roots, readiness.

Every value is validated at start-up, one line naming the variable: roots are absolute, existing
folders and never `/`; numbers are finite and in range (see NUMBERS).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every DROPSYNC_* variable; a malformed value is a ConfigError naming it."""
        env = os.environ if env is None else env
        check_numbers(env)
        state_dir = Path(os.path.realpath(env.get("DROPSYNC_STATE_DIR") or ".dropsync"))
        allowed = root_folders(env, "DROPSYNC_ALLOWED_ROOTS")
        roots = _drop_roots(env.get("DROPSYNC_DROP_ROOTS", ""))
        ready = tuple(
            f.strip() for f in env.get("DROPSYNC_READY_FILES", ",".join(DEFAULT_READY_FILES)).split(",") if f.strip()
        )
        quiet = env_number(env, "DROPSYNC_QUIET_SECONDS")
        quarantine = _quarantine_dir(env.get("DROPSYNC_QUARANTINE_DIR", "").strip(), allowed, roots)
        return cls(state_dir, allowed, roots, root_folders(env, "DROPSYNC_METADATA_ROOTS"), ready, quiet,
                   file_mode=_file_mode(env.get("DROPSYNC_FILE_MODE", "")), quarantine_dir=quarantine)

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


def _split(value: str) -> list[str]:
    return [p for p in value.split(os.pathsep) if p.strip()]


def _drop_roots(value: str) -> tuple[DropRoot, ...]:
    roots: list[DropRoot] = []
    for entry in _split(value):
        name, sep, path = entry.partition("=")
        if not sep or os.sep in name:  # a bare path, which may itself contain '='
            name, path = "", entry
        real = root_folder("DROPSYNC_DROP_ROOTS", path.strip())
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


def _quarantine_dir(value: str, allowed: tuple[Path, ...], drop_roots: tuple[DropRoot, ...]) -> Path | None:
    """DROPSYNC_QUARANTINE_DIR: an existing folder inside the allowed roots that neither holds nor
    lies in a drop root; unset or empty: quarantine is off."""
    if not value:
        return None
    real = root_folder("DROPSYNC_QUARANTINE_DIR", value)
    if not any(inside(real, root) for root in allowed):
        roots = os.pathsep.join(map(str, allowed)) or "unset"
        raise ConfigError(f"DROPSYNC_QUARANTINE_DIR: {real} is outside DROPSYNC_ALLOWED_ROOTS ({roots})")
    for root in drop_roots:
        if inside(real, root.path) or inside(root.path, real):
            raise ConfigError(f"DROPSYNC_QUARANTINE_DIR: {real} and drop root {root.path} lie in one another")
    return real


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def root_folders(env: Mapping[str, str], name: str) -> tuple[Path, ...]:
    """The os.pathsep-separated folders of `name`, each checked by `root_folder`."""
    return tuple(root_folder(name, p.strip()) for p in _split(env.get(name, "")))


def root_folder(name: str, value: str) -> Path:
    """A root folder of the deployment (realpath): absolute, an existing folder, never `/`."""
    if not os.path.isabs(value):
        raise ConfigError(f"{name}: {value!r} is not an absolute path")
    real = Path(os.path.realpath(value))
    if real == Path(real.anchor):
        raise ConfigError(f"{name}: {value!r} is the file system root; name a folder below it")
    if not real.is_dir():
        raise ConfigError(f"{name}: {value} is not an existing folder")
    return real


class NumberRange(NamedTuple):
    """The values a numeric setting accepts: `low` is excluded when `open_low`."""

    integer: bool
    low: float
    high: float
    open_low: bool = False


# Every numeric DROPSYNC_* setting, read by the settings, the status store, LabKey and the sensor.
NUMBERS: dict[str, NumberRange] = {
    "DROPSYNC_QUIET_SECONDS": NumberRange(False, 0, 365 * 86400),
    "DROPSYNC_LEASE_SECONDS": NumberRange(False, 0, 7 * 86400, open_low=True),
    "DROPSYNC_MAX_FAILURES": NumberRange(True, 1, 1000),
    "DROPSYNC_LABKEY_ATTEMPTS": NumberRange(True, 1, 100),
    "DROPSYNC_LABKEY_RETRY_DELAY": NumberRange(False, 0, 3600),
    "DROPSYNC_LABKEY_TIMEOUT": NumberRange(False, 0, 86400, open_low=True),
    "DROPSYNC_SENSOR_INTERVAL": NumberRange(True, 1, 86400),
}


def check_numbers(env: Mapping[str, str]) -> None:
    """Refuse any numeric setting that is not a finite number in its range (one line naming it)."""
    for name in NUMBERS:
        env_number(env, name)


def env_number(env: Mapping[str, str], name: str, default: float | None = None) -> float | None:
    """The value of numeric setting `name` (an int for integer settings), or `default` when unset."""
    text = (env.get(name) or "").strip()
    if not text:
        return default
    spec = NUMBERS[name]
    try:
        value = int(text) if spec.integer else float(text)
    except ValueError:
        kind = "a whole number" if spec.integer else "a number"
        raise ConfigError(f"{name}: not {kind}: {text!r}") from None
    too_low = value <= spec.low if spec.open_low else value < spec.low
    if not math.isfinite(value) or too_low or value > spec.high:
        low = f"> {spec.low:g}" if spec.open_low else f">= {spec.low:g}"
        raise ConfigError(f"{name}: {text!r} is out of range (a finite number {low} and <= {spec.high:g})")
    return value
