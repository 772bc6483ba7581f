"""Partition key -> drop folder: the `path` the drop's status document records (written by the
sensor, `dropsync sync` and `dropsync register`); recomputed from the roots only for a drop whose
document has none (a document of an older version, or a partition added by hand)."""

from __future__ import annotations

from pathlib import Path

from dropsync_dagster.core.drops.discovery import DropFolder, list_drops
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.status.store import StatusStore


def locate(store: StatusStore, settings: Settings, key: str) -> DropFolder:
    """The folder of partition `key`: its status document's path, else a scan of the roots."""
    doc = store.get(key)
    if doc is not None and doc.path:
        return folder_at(settings, key, Path(doc.path))
    for drop in list_drops(settings.drop_roots):
        if drop.key == key:
            return drop
    raise ConfigError(f"partition '{key}': its status document records no folder, and none under DROPSYNC_DROP_ROOTS has this key")


def folder_at(settings: Settings, key: str, path: Path) -> DropFolder:
    """The drop of partition `key` at `path`, under the drop root that holds it (else its parent's name)."""
    root = next((r.name for r in settings.drop_roots if r.path == path.parent), path.parent.name)
    return DropFolder(key, root, path)


def register_at(store: StatusStore, drop: DropFolder) -> None:
    """Register the drop (idempotent) with its folder as the document's path (a drop given by its
    path may lie outside the roots; an older document may have no path)."""
    if store.register(drop.key, str(drop.path)).path != str(drop.path):
        store.set_path(drop.key, str(drop.path))
