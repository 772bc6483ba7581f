"""Encrypted archives of a drop, in generations: `<drop>.g<N>.tar.gpg` holds what earlier
generations lack, its key is wrapped to every recipient, and nothing is ever overwritten."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import secrets
import stat
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from dropsync_dagster.core.archive.stream import OnBytes, StreamOutcome, stream_archive, write_all
from dropsync_dagster.core.drops.discovery import TEMP_MARKER
from dropsync_dagster.core.errors import ConfigError, DropsyncError, IntegrityError, UnsafePathError
from dropsync_dagster.core.archive.gpg import Gpg, find_gpg, recipient_fingerprints, wrap_key
from dropsync_dagster.core.integrity.hashing import hash_file
from dropsync_dagster.core.model import Digests
from dropsync_dagster.core.fs.confined import open_root
from dropsync_dagster.core.fs.staging import StagedFile, sweep
from dropsync_dagster.core.testhooks import hook

KEY_BYTES = 32
FOLDER_MODE = 0o700  # archive and key folders: only the service account lists them
FILE_MODE = 0o600  # archives, their indexes and wrapped keys: only the service account reads them
_SAFE_DROP = re.compile(r"[A-Za-z0-9._-]+")
_FINAL = re.compile(r"(?P<drop>.+)\.g(?P<gen>[1-9][0-9]*)\.(?P<kind>tar\.gpg|key\.gpg|members\.json)")


class ArchiveGeneration(BaseModel):
    """One published generation of a drop's archive, as its members index records it."""

    drop: str
    generation: int
    archive_path: str
    key_path: str
    created_at: str
    recipient_fingerprints: list[str]
    members: dict[str, Digests]  # drop-relative path -> size and BLAKE3


class ArchiveResult(BaseModel):
    """What one archive step did; `nothing_to_archive` when earlier generations hold every member."""

    drop: str
    nothing_to_archive: bool = False
    generation: int | None = None
    archive_path: str | None = None
    key_path: str | None = None
    index_path: str | None = None
    member_count: int = 0
    members: list[str] = []
    bytes_written: int = 0  # member content streamed into the tar
    archive_size: int = 0  # encrypted bytes on disk
    recipient_fingerprints: list[str] = []
    encrypt_seconds: float = 0.0
    encrypt_mb_per_s: float = 0.0
    validate_seconds: float = 0.0  # runs alongside encryption, so it overlaps encrypt_seconds
    validate_mb_per_s: float = 0.0
    total_seconds: float = 0.0


def select_members(drop_dir: Path, exclusions: Sequence[str], planned: Collection[str]) -> list[str]:
    """Drop-relative paths of every regular file under the drop (symlinks not followed), minus
    `exclusions` (tar --exclude globs); excluding a planned file is a ConfigError."""
    members: list[str] = []
    for folder, dirs, files in os.walk(drop_dir):  # never descends through a symlinked folder
        rel_folder = os.path.relpath(folder, drop_dir).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else f"{rel_folder}/"
        for name in files:
            if TEMP_MARKER in name or not stat.S_ISREG(os.lstat(os.path.join(folder, name)).st_mode):
                continue
            rel = prefix + name
            if not _utf8(rel):
                continue  # held `bad_name` and never moved; a members index is JSON text
            pattern = excluding_pattern(rel, exclusions)
            if pattern is None:
                members.append(rel)
            elif rel in planned:
                raise ConfigError(f"archive.tar_exclusions: pattern '{pattern}' excludes planned file {rel}")
    return sorted(members)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def excluding_pattern(relpath: str, exclusions: Sequence[str]) -> str | None:
    """The first pattern excluding `relpath`, matched as GNU tar --exclude does: against the path
    or any trailing part of it, and of every folder above it (an excluded folder takes its files)."""
    parts = relpath.split("/")
    for pattern in exclusions:
        for end in range(1, len(parts) + 1):
            for start in range(end):
                if fnmatch.fnmatchcase("/".join(parts[start:end]), pattern):
                    return pattern
    return None


def list_generations(archive_dir: Path, drop: str) -> list[ArchiveGeneration]:
    """The published generations of `drop`, oldest first (a generation exists once its archive does)."""
    _check_drop(drop)
    found: list[ArchiveGeneration] = []
    for gen in sorted(_generations_on_disk(Path(archive_dir), drop, "tar.gpg")):
        index = Path(archive_dir) / f"{drop}.g{gen}.members.json"
        try:
            found.append(ArchiveGeneration.model_validate_json(index.read_bytes()))
        except FileNotFoundError as exc:
            raise IntegrityError(f"{drop}: archive generation {gen} has no members index {index}") from exc
        except ValueError as exc:
            raise IntegrityError(f"{drop}: members index {index} is unreadable: {exc}") from exc
    return found


def archived_members(archive_dir: Path, drop: str) -> dict[str, str]:
    """Every member any generation of `drop` holds, drop-relative path -> BLAKE3 (latest wins)."""
    return {rel: d.blake3 for rel, d in _archived_digests(list_generations(archive_dir, drop)).items()}


def member_locations(archive_dir: Path, drop: str) -> dict[str, tuple[str, int]]:
    """Every member any generation of `drop` holds -> (archive path, generation) of the latest one."""
    return {rel: (g.archive_path, g.generation)
            for g in list_generations(archive_dir, drop) for rel in g.members}


def write_archive(
    drop_dir: Path,
    drop: str,
    members: Sequence[str],
    expected: Mapping[str, str],
    archive_dir: Path,
    key_dir: Path,
    recipients: Sequence[str],
    gnupghome: str | None = None,
    on_bytes: OnBytes | None = None,
    *,
    new_key: Callable[[], bytes] = lambda: secrets.token_bytes(KEY_BYTES),
    guard: Callable[[], None] | None = None,
) -> ArchiveResult:
    """Archive the members earlier generations lack as a new, validated generation of `drop`.
    `expected` maps planned files to their BLAKE3 from the checksum step; `new_key` exists for tests.
    Files are written 0600 through descriptors of the 0700 archive and key folders; `guard`
    re-checks the run's claim right before each file is published."""
    drop_dir, archive_dir, key_dir = Path(drop_dir), Path(archive_dir), Path(key_dir)
    _check_drop(drop)
    fingerprints = recipient_fingerprints(recipients, gnupghome)
    gpg = find_gpg(gnupghome)
    members = sorted(set(members))
    member_expected = _expected_by_member(drop_dir, drop, members, expected)
    folders = [_open_private(archive_dir), _open_private(key_dir)]
    try:
        for fd in folders:
            sweep(fd, f".{drop}.g")  # a killed run's temporaries, even when nothing is new
        delta = _delta(drop_dir, members, member_expected, _archived_digests(list_generations(archive_dir, drop)))
        if not delta:
            return ArchiveResult(drop=drop, nothing_to_archive=True, recipient_fingerprints=fingerprints)
        return _write_generation(
            drop_dir, drop, delta, member_expected, archive_dir, key_dir, folders, fingerprints, gpg, on_bytes,
            new_key, guard,
        )
    finally:
        for fd in folders:
            os.close(fd)


def _open_private(folder: Path) -> int:
    """The folder (made if missing, mode 0700), opened without following a link at its name."""
    os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)
    fd = open_root(folder)
    os.fchmod(fd, FOLDER_MODE)
    return fd


def _write_generation(
    drop_dir: Path, drop: str, delta: list[str], member_expected: dict[str, str], archive_dir: Path, key_dir: Path,
    folders: list[int], fingerprints: list[str], gpg: Gpg, on_bytes: OnBytes | None, new_key: Callable[[], bytes],
    guard: Callable[[], None] | None,
) -> ArchiveResult:
    archive_fd, key_fd = folders
    gen = 1 + max([0, *_generations_on_disk(archive_dir, drop), *_generations_on_disk(key_dir, drop)])
    archive = archive_dir / f"{drop}.g{gen}.tar.gpg"
    key = key_dir / f"{drop}.g{gen}.key.gpg"
    index = archive_dir / f"{drop}.g{gen}.members.json"
    raw_key = new_key()
    if len(raw_key) != KEY_BYTES:
        raise ConfigError(f"{drop}: an archive key must be {KEY_BYTES} bytes, got {len(raw_key)}")
    passphrase = raw_key.hex()  # hex: gpg cuts a raw passphrase at its first newline byte

    staged: list[StagedFile] = []
    try:
        staged = [StagedFile.create_in(fd, final, FILE_MODE) for fd, final in ((key_fd, key), (archive_fd, archive), (archive_fd, index))]
        key_tmp, archive_tmp, index_tmp = staged
        # Wrap first: an archive nobody can unwrap must never be written, let alone published.
        _write_durably(key_tmp, wrap_key(gpg, passphrase, fingerprints, key.name))
        outcome = stream_archive(
            drop_dir, delta, {m: member_expected[m] for m in delta if m in member_expected},
            archive_tmp.fd, passphrase, gpg, on_bytes=on_bytes, label=f"{drop}: {archive}", drop=drop,
        )
        record = ArchiveGeneration(
            drop=drop, generation=gen, archive_path=str(archive), key_path=str(key),
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            recipient_fingerprints=fingerprints, members=outcome.written,
        )
        _write_durably(index_tmp, record.model_dump_json(indent=1, exclude_none=True).encode())
        # The key, then the index, are durable before the archive appears: it always has both.
        if guard is not None:
            guard()
        for temp, final in ((key_tmp, key), (index_tmp, index), (archive_tmp, archive)):
            if guard is not None:
                guard()
            _publish(temp, final)
        hook("archive_published", path=archive)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DropsyncError(f"{drop}: disk full writing archive to {archive_dir} or {key_dir}") from exc
        raise
    finally:
        for temp in staged:
            if temp.fd >= 0:
                temp.discard()
    return _result(drop, gen, archive, key, index, outcome, fingerprints)


def _write_durably(temp: StagedFile, data: bytes) -> None:
    write_all(temp.fd, data)
    os.fsync(temp.fd)


def _publish(temp: StagedFile, final: Path) -> None:
    """Give `temp` its final name in its folder without ever replacing an existing file."""
    try:
        temp.link_to(final.name)
    except FileExistsError as exc:
        raise DropsyncError(f"refusing to overwrite {final}") from exc
    temp.discard()
    os.fsync(temp.folder_fd)


def _result(
    drop: str, gen: int, archive: Path, key: Path, index: Path, outcome: StreamOutcome, fingerprints: list[str]
) -> ArchiveResult:
    mb = outcome.content_bytes / 1e6
    validate = outcome.validate_seconds or 0.0
    return ArchiveResult(
        drop=drop, generation=gen, archive_path=str(archive), key_path=str(key), index_path=str(index),
        member_count=len(outcome.written), members=sorted(outcome.written), bytes_written=outcome.content_bytes,
        archive_size=archive.stat().st_size, recipient_fingerprints=fingerprints,
        encrypt_seconds=outcome.encrypt_seconds, encrypt_mb_per_s=mb / max(outcome.encrypt_seconds, 1e-9),
        validate_seconds=validate, validate_mb_per_s=mb / max(validate, 1e-9) if validate else 0.0,
        total_seconds=outcome.total_seconds,
    )


def _check_drop(drop: str) -> None:
    if not _SAFE_DROP.fullmatch(drop) or ".." in drop:
        raise UnsafePathError(f"{drop!r}: not a partition key usable in archive file names")


def _generations_on_disk(folder: Path, drop: str, kind: str | None = None) -> list[int]:
    """Generation numbers of `drop` named by final files in `folder` (of one `kind`, or any)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    gens = []
    for name in names:
        match = _FINAL.fullmatch(name)
        if match and match["drop"] == drop and (kind is None or match["kind"] == kind):
            gens.append(int(match["gen"]))
    return gens


def _archived_digests(generations: list[ArchiveGeneration]) -> dict[str, Digests]:
    union: dict[str, Digests] = {}
    for generation in generations:
        union.update(generation.members)
    return union


def _expected_by_member(drop_dir: Path, drop: str, members: list[str], expected: Mapping[str, str]) -> dict[str, str]:
    """Expected BLAKE3 per member; a planned symlink inside the drop is checked through its target."""
    present = set(members)
    for rel in (*members, *expected):
        if rel.startswith("/") or ".." in rel.split("/"):
            raise UnsafePathError(f"{drop}: path {rel!r} leaves the drop folder")
    out: dict[str, str] = {}
    for rel, digest in expected.items():
        member = rel
        if rel not in present and os.path.islink(drop_dir / rel):
            member = os.path.relpath(os.path.realpath(drop_dir / rel), os.path.realpath(drop_dir))
            member = member.replace(os.sep, "/")
        if member not in present:
            raise IntegrityError(f"{drop}: planned file {rel} is not a regular file among the archive members")
        if out.setdefault(member, digest) != digest:
            raise IntegrityError(f"{drop}: {rel} and another planned path to {member} expect different content")
    return out


def _delta(
    drop_dir: Path, members: list[str], expected: Mapping[str, str], archived: Mapping[str, Digests]
) -> list[str]:
    """Members that are new, or whose content differs from what the last generation holding them has."""
    delta = []
    for rel in members:
        before = archived.get(rel)
        if before is None:
            delta.append(rel)
        elif rel in expected:
            if expected[rel] != before.blake3:
                delta.append(rel)
        # Unplanned files have no checksum yet: compare size, then content.
        elif os.stat(drop_dir / rel, follow_symlinks=False).st_size != before.size or (
            hash_file(drop_dir / rel, False).blake3 != before.blake3
        ):
            delta.append(rel)
    return delta
