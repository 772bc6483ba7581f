"""How a deployment setting is written in the environment: numbers, folders, lists, switches.

Every parser raises a ConfigError of one line naming the variable: roots are absolute, existing
folders and never `/`; numbers are finite and in range (see NUMBERS); switches are true/false.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from dropsync_dagster.core.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer setting (checked as env_number), or `default` when unset."""
    return int(env_number(env, name, default))  # type: ignore[arg-type]


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A numeric setting (checked as env_number), or `default` when unset."""
    return float(env_number(env, name, default))  # type: ignore[arg-type]


def env_switch(env: Mapping[str, str], name: str) -> bool | None:
    """A true/false setting (1/0, yes/no, on/off too); None when unset or empty."""
    text = (env.get(name) or "").strip().lower()
    if not text:
        return None
    if text not in _TRUE | _FALSE:
        raise ConfigError(f"{name}: expected true/false, got {env[name]!r}")
    return text in _TRUE


def env_list(env: Mapping[str, str], name: str, separator: str = ",") -> list[str]:
    """The non-empty, stripped items of a `separator`-separated setting."""
    return [item.strip() for item in (env.get(name) or "").split(separator) if item.strip()]


def env_text(env: Mapping[str, str], name: str) -> str | None:
    """A text setting, or None when unset or empty."""
    return env.get(name) or None


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


def named_roots(value: str) -> dict[str, str]:
    """DROPSYNC_DROP_ROOTS entries `name=path` (or a bare path, which may itself contain '='),
    by name; an empty name is the folder's own name, a name used twice is an error."""
    roots: dict[str, str] = {}
    for entry in env_list({"v": value}, "v", os.pathsep):
        name, sep, path = entry.partition("=")
        if not sep or os.sep in name:  # a bare path, which may itself contain '='
            name, path = "", entry
        name = name.strip() or root_folder("DROPSYNC_DROP_ROOTS", path.strip()).name
        if name in roots:
            raise ConfigError(f"DROPSYNC_DROP_ROOTS: two roots are named '{name}'; name them 'name=path'")
        roots[name] = path.strip()
    return roots


def file_mode(value: str) -> int | None:
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
