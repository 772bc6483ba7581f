"""Partition key <-> drop folder: remembered at registration, recomputable from the settings."""

from __future__ import annotations

import json
from pathlib import Path

from dropsync_dagster.core.drops.discovery import DropFolder, list_drops
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.settings import Settings


def remember(settings: Settings, drop: DropFolder) -> None:
    """Record where a registered drop lives (drops given by path may be outside the roots)."""
    path = settings.drop_dir(drop.key) / "drop.json"
    record = {"key": drop.key, "root": drop.root, "path": str(drop.path)}
    if path.exists() and json.loads(path.read_text()) == record:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def locate(settings: Settings, key: str) -> DropFolder:
    """The folder of partition `key`: its registration record, else a scan of the roots."""
    path = settings.drop_dir(key) / "drop.json"
    if path.exists():
        record = json.loads(path.read_text())
        return DropFolder(record["key"], record["root"], Path(record["path"]))
    for drop in list_drops(settings.drop_roots):
        if drop.key == key:
            return drop
    raise ConfigError(f"partition '{key}': no registered drop and none under DROPSYNC_DROP_ROOTS")
