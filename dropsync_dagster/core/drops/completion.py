"""Completion files: names a drop's `sync.yml` lists (`completion_files`) that must sit in the
drop folder before the drop is ready, besides the deployment's sentinels (e.g. an instrument's
`CopyComplete.txt`). Like a sentinel, each must be the drop's own regular file."""

from __future__ import annotations

from pathlib import Path

from dropsync_dagster.core.drops.discovery import is_regular
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, SyncConfig, load_config


def missing_completion_files(drop_path: Path, config: SyncConfig | None = None) -> list[str]:
    """The completion files `sync.yml` names that are not (yet) regular files in the drop."""
    config = load_config(drop_path / CONFIG_NAME) if config is None else config
    return [name for name in config.completion_files if not is_regular(drop_path / name)]


def waiting_for_completion(drop_path: Path) -> bool:
    """True while a completion file is missing; a broken sync.yml is not waiting (whoever loads
    it next reports it)."""
    try:
        return bool(missing_completion_files(drop_path))
    except ConfigError:
        return False
