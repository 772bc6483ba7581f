"""Restoring a drop from its archive: every generation up to one merged (a later one's member
wins), every member checked against its members index, and nothing under a final name until all
of it is proven intact."""

from __future__ import annotations

import fnmatch
import os
import secrets
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from dropsync_dagster.core.archive.generations import ArchiveGeneration, list_generations
from dropsync_dagster.core.archive.gpg import find_gpg, unwrap_key
from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.errors import ConfigError, IntegrityError, RefusedError
from dropsync_dagster.core.stewardship.decryption import read_generation

STAGING_PREFIX = ".dropsync-restore."


class Restored(BaseModel):
    """What a restore wrote: each file with the generation it came from."""

    drop: str
    to: str
    files: dict[str, int]  # drop-relative path -> generation


def restore_drop(policy: ArchivePolicy, drop: str, to: Path, *, patterns: Sequence[str] = (),
                 generation: int | None = None) -> Restored:
    """Restore `drop` as of `generation` (default: the latest) into `to`, only the members matching
    `patterns` when given; IntegrityError on any damage, RefusedError when a file would be replaced."""
    generations = list_generations(policy.archive_dir, drop)
    if not generations:
        raise ConfigError(f"{drop}: no archive generations in {policy.archive_dir}")
    if generation is not None and generation not in {g.generation for g in generations}:
        raise ConfigError(f"{drop}: no archive generation {generation} in {policy.archive_dir}")
    wanted = _wanted(generations, generation, patterns)
    if not wanted:
        raise ConfigError(f"{drop}: no archived file matches {' '.join(patterns)}")
    to = Path(to)
    existing = [rel for rel in wanted if os.path.lexists(to / rel)]
    if existing:
        raise RefusedError(f"{drop}: {to / existing[0]} exists; restore into an empty folder")
    to.mkdir(parents=True, exist_ok=True)
    staging = to / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    staging.mkdir(mode=0o700)
    try:
        for gen in generations:
            mine = {rel for rel, g in wanted.items() if g == gen.generation}
            if mine:
                _extract(drop, gen, mine, staging, policy)
        _publish(drop, staging, to, sorted(wanted))
    finally:
        shutil.rmtree(staging)  # staged bytes never stay behind, proven or not
    return Restored(drop=drop, to=str(to), files=wanted)


def _wanted(generations: list[ArchiveGeneration], upto: int | None, patterns: Sequence[str]) -> dict[str, int]:
    """Member -> the latest generation (up to `upto`) holding it, for members matching `patterns`."""
    wanted: dict[str, int] = {}
    for gen in generations:
        if upto is None or gen.generation <= upto:
            for rel in gen.members:
                _check_name(gen, rel)
                if not patterns or any(fnmatch.fnmatchcase(rel, p) for p in patterns):
                    wanted[rel] = gen.generation
    return wanted


def _check_name(gen: ArchiveGeneration, rel: str) -> None:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(f"{gen.drop}: members index of generation {gen.generation} names unsafe path {rel!r}")


def _extract(drop: str, gen: ArchiveGeneration, mine: set[str], staging: Path, policy: ArchivePolicy) -> None:
    """Decrypt one generation, writing the members in `mine` under `staging`; every member must
    match the members index and gpg must confirm the whole message, or IntegrityError."""
    archive = Path(gen.archive_path)
    headers: dict[str, tarfile.TarInfo] = {}  # of the members written, for their mode and mtime

    def sink(info: tarfile.TarInfo) -> BinaryIO | None:
        if info.name not in mine:
            return None
        headers[info.name] = info
        path = staging / info.name
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")

    read = read_generation(archive, unwrap_key(Path(gen.key_path), policy.gnupghome), find_gpg(policy.gnupghome), sink)
    label = f"{drop}: {archive}"
    if read.problem is not None:
        raise IntegrityError(f"{label}: {read.problem}")
    for rel, indexed in sorted(gen.members.items()):
        got = read.members.get(rel)
        if got is None:
            raise IntegrityError(f"{label}: member {rel} is missing")
        if got != indexed:
            raise IntegrityError(f"{label}: member {rel} has BLAKE3 {got.blake3[:16]}…, its index {indexed.blake3[:16]}…")
    extra = sorted(set(read.members) - set(gen.members))
    if extra:
        raise IntegrityError(f"{label}: member {extra[0]} is not in the members index")
    for rel, info in headers.items():
        os.chmod(staging / rel, info.mode & 0o777 or 0o600)
        os.utime(staging / rel, (info.mtime, info.mtime))


def _publish(drop: str, staging: Path, to: Path, rels: list[str]) -> None:
    """Give every staged file its final name, never replacing one; on a clash take back all of them."""
    done: list[Path] = []
    try:
        for rel in rels:
            final = to / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.link(staging / rel, final)
            done.append(final)
    except FileExistsError as exc:
        for path in done:
            path.unlink()
        raise RefusedError(f"{drop}: {exc.filename2 or exc.filename} appeared during the restore; nothing restored") from exc
