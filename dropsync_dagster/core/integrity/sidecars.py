"""Sidecar checksum files in `md5sum`/`b3sum` format: written as those tools write them, and
read without ever following a link, blocking on a FIFO, or slurping a big file."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Literal

from dropsync_dagster.core.errors import IntegrityError
from dropsync_dagster.core.fs.staging import (  # noqa: F401  (re-exported: the sidecar protocol's API)
    TEMP_MARK,
    StagedFile,
    flush_filesystems,
    fsync_dir,
    remove_stale_temps,
    write_atomic,
    write_atomic_in,
)

SidecarKind = Literal["md5", "blake3"]
SIDECAR_KINDS: tuple[SidecarKind, ...] = ("md5", "blake3")

_HEX_LENGTH = {"md5": 32, "blake3": 64}
# md5sum escapes \r too (coreutils >= 9); b3sum escapes only backslash and newline.
_ESCAPES = {"md5": {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}, "blake3": {"\\": "\\\\", "\n": "\\n"}}
_LINE = re.compile(r"\\?(?P<hex>[0-9A-Fa-f]+)(?:(?:  | \*).+)?")  # [\]HEX[  name| *name]
_MAX_SIDECAR_BYTES = 64 * 1024  # a real sidecar is one short line; refuse to slurp a big file
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class BadSidecar(IntegrityError):
    """A sidecar that is malformed, oversized, a symlink, unreadable or not a regular file."""


def sidecar_path(file: Path, kind: SidecarKind) -> Path:
    """The sidecar of `kind` beside `file`: `<file>.md5` or `<file>.blake3`."""
    return file.with_name(f"{file.name}.{kind}")


def sidecar_line(kind: SidecarKind, digest: str, name: str) -> str:
    """One line exactly as `md5sum`/`b3sum` print it: `HEX  name`, escaped when the name needs it."""
    _check_digest(kind, digest, name)
    escaped = "".join(_ESCAPES[kind].get(ch, ch) for ch in name)
    prefix = "\\" if escaped != name else ""
    return f"{prefix}{digest.lower()}  {escaped}\n"


def parse_sidecar(text: str, kind: SidecarKind, where: Path) -> str:
    """The lower-case digest of a sidecar's single entry (`HEX  name`, `HEX *name` or bare `HEX`)."""
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if len(lines) != 1:
        raise BadSidecar(f"malformed sidecar {where}: expected one entry, found {len(lines)}")
    match = _LINE.fullmatch(lines[0].strip())
    if match is None or len(match["hex"]) != _HEX_LENGTH[kind]:
        raise BadSidecar(f"malformed sidecar {where}: not a {kind} digest line")
    return match["hex"].lower()


def read_sidecar(file: Path, kind: SidecarKind, folder_fd: int | None = None) -> str | None:
    """The digest recorded in `file`'s sidecar of `kind`, or None when there is no sidecar;
    BadSidecar when it is not one short, well-formed line in a regular file. With `folder_fd`
    (the open folder of `file`) the sidecar's name is looked up there."""
    raw = read_sidecar_bytes(file, kind, folder_fd)
    if raw is None:
        return None
    path = sidecar_path(file, kind)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadSidecar(f"malformed sidecar {path}: not UTF-8 text") from err
    return parse_sidecar(text, kind, path)


def read_sidecar_bytes(file: Path, kind: SidecarKind, folder_fd: int | None = None) -> bytes | None:
    """The raw bytes of `file`'s sidecar (regular file, at most 64 KiB), or None without one."""
    path = sidecar_path(file, kind)
    try:
        fd = os.open(path.name if folder_fd is not None else path, _READ, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        why = "a symlink" if err.errno == errno.ELOOP else err.strerror
        raise BadSidecar(f"sidecar {path}: {why}") from err
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadSidecar(f"sidecar {path}: not a regular file")
        if st.st_size > _MAX_SIDECAR_BYTES:
            raise BadSidecar(f"malformed sidecar {path}: larger than {_MAX_SIDECAR_BYTES} bytes")
        raw = os.read(fd, _MAX_SIDECAR_BYTES + 1)
    except OSError as err:
        raise BadSidecar(f"sidecar {path}: {err.strerror}") from err
    finally:
        os.close(fd)
    if len(raw) > _MAX_SIDECAR_BYTES:
        raise BadSidecar(f"malformed sidecar {path}: larger than {_MAX_SIDECAR_BYTES} bytes")
    return raw


def read_md5_sidecar(file: Path) -> str | None:
    """The expected MD5 from `<file>.md5` (md5sum format or bare hex), or None without one."""
    return read_sidecar(file, "md5")


def write_sidecar(
    file: Path, kind: SidecarKind, digest: str, name: str, durable: bool = True, folder_fd: int | None = None
) -> Path:
    """Write `<file>.<kind>` atomically as `HEX  name`; returns the sidecar's path. With
    `folder_fd` (the open folder of `file`) it is written there, confined.

    `durable=False` leaves the flush to the caller (one flush for a whole batch)."""
    path = sidecar_path(file, kind)
    data = sidecar_line(kind, digest, name).encode("utf-8")
    if folder_fd is None:
        write_atomic(path, data, durable)
    else:
        write_atomic_in(folder_fd, path, data, durable)
    return path


def _check_digest(kind: SidecarKind, digest: str, name: str) -> None:
    if len(digest) != _HEX_LENGTH[kind] or not all(c in "0123456789abcdefABCDEF" for c in digest):
        raise IntegrityError(f"cannot write {kind} sidecar for {name}: {digest!r} is not a {kind} digest")


