"""Layout rules: where a drop's repository and processed folders may lie, and where its metadata
may be read from. All paths compared here are real paths (symlinks resolved by the caller).

A repository or processed folder equal to, inside or containing the drop, a drop root or each
other would let a run delete originals (`processed_folder: .`), move its own copies back out of
the repository on the next run, or inject files into another drop (`../other_drop`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError


def inside(path: Path, root: Path) -> bool:
    """True when `path` is `root` or lies below it (both real paths)."""
    return path == root or root in path.parents


def _relation(a: Path, b: Path) -> str | None:
    """How folder `a` stands to folder `b`: the same, inside, containing, or unrelated (None)."""
    if a == b:
        return "is the same folder as"
    if b in a.parents:
        return "lies inside"
    if a in b.parents:
        return "contains"
    return None


def check_layout(drop: Path, drop_roots: Iterable[Path], repository: Path, processed: Path,
                 quarantine: Path | None = None) -> None:
    """Refuse (ConfigError naming both folders) a repository or processed folder that equals, lies
    in or contains the drop, a drop root (the drop's parent counts as one), the quarantine folder
    or the other folder."""
    drop = Path(os.path.realpath(drop))
    others: dict[Path, str] = {drop: "the drop folder"}
    for root in (*drop_roots, drop.parent):
        others.setdefault(root, "the drop root")
    if quarantine is not None:
        others.setdefault(quarantine, "DROPSYNC_QUARANTINE_DIR")
    for key, folder in (("repository_folder", repository), ("processed_folder", processed)):
        for other, label in others.items():
            relation = _relation(folder, other)
            if relation is not None:
                raise ConfigError(f"{key} {folder} {relation} {label} {other}")
    relation = _relation(processed, repository)
    if relation is not None:
        raise ConfigError(f"processed_folder {processed} {relation} repository_folder {repository}")


def confined(path: Path, roots: Sequence[Path], label: str, roots_named: str) -> Path:
    """The real path of `path`, refused (ConfigError) unless it lies in one of `roots`."""
    real = Path(os.path.realpath(path))
    if not any(inside(real, root) for root in roots):
        raise ConfigError(f"{label}: {real} is outside {roots_named}")
    return real
