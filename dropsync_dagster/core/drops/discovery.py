"""Finding drops under the roots, their readiness, and the candidate files of one drop."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from dropsync_dagster.core.drops.small_files import read_regular
from dropsync_dagster.core.syncyml.regex import BoundedPattern, compile_bounded
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.model import Reason
from dropsync_dagster.core.settings import DropRoot, Settings

SIDECAR_SUFFIXES = (".md5", ".blake3")
TEMP_MARKER = ".dropsync-tmp"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")
NAME_MAX = 255  # bytes in one name
PATH_MAX = 4096  # bytes in a path, with its NUL
_LONGEST_SIDECAR = len(".blake3")
EXIT_CODE_BYTES = 64  # an rsync exit code is a number and a newline
_UNREADABLE = (errno.EACCES, errno.EPERM, errno.EIO)  # a listed entry that cannot be stat'ed


@dataclass(frozen=True)
class DropFolder:
    """One drop: its partition key, its root and its folder."""

    key: str
    root: str
    path: Path


@dataclass(frozen=True)
class Candidate:
    """A file matched by `drop_filename_filter`, with its identity from one `lstat`, or an
    entry held before anything reads it (`held`): a symlink or special file (`unsafe_path`), a
    folder that cannot be listed (`unreadable`), a name that is not UTF-8 or too long (`bad_name`;
    its relpath and source are then shown escaped, and never opened)."""

    relpath: str
    source: str  # absolute path as text: a Path per file was a planning hot spot
    size: int
    mtime: float
    device: int = 0
    inode: int = 0
    ctime: float = 0.0
    held: Reason | None = None
    folder: bool = False  # a folder that cannot be listed, held whole: it may hold matching files

    @property
    def path(self) -> Path:
        """The file's path."""
        return Path(self.source)

    @property
    def escapes(self) -> bool:
        """True when the entry is never read (a symlink or special file)."""
        return self.held is Reason.UNSAFE_PATH


class Readiness(StrEnum):
    """Whether a drop's transfer has finished."""

    READY = "ready"
    WAITING = "waiting"
    TRANSFER_FAILED = "transfer_failed"


def drop_key(root_name: str, folder_name: str) -> str:
    """The partition key `<root>-<folder>`, sanitised to [A-Za-z0-9._-] with no `..`."""
    key = _UNSAFE_KEY_CHARS.sub("_", f"{root_name}-{folder_name}")
    return key.replace("..", "__")


def list_drops(roots: tuple[DropRoot, ...]) -> list[DropFolder]:
    """Every folder directly under a root that holds a `sync.yml`; colliding keys are an error."""
    drops: dict[str, DropFolder] = {}
    for root in roots:
        try:
            entries = sorted(os.scandir(root.path), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, CONFIG_NAME)):
                drop = DropFolder(drop_key(root.name, entry.name), root.name, Path(entry.path))
                other = drops.get(drop.key)
                if other is not None:
                    raise ConfigError(f"drops {other.path} and {drop.path} both map to partition key '{drop.key}'")
                drops[drop.key] = drop
    return list(drops.values())


def resolve_drop(settings: Settings, drop: str) -> DropFolder:
    """A drop given as a folder path or a partition key."""
    path = Path(drop)
    if path.is_dir():
        real = Path(os.path.realpath(path))
        root = next((r for r in settings.drop_roots if r.path == real.parent), None)
        return DropFolder(drop_key(root.name if root else real.parent.name, real.name), root.name if root else real.parent.name, real)
    for found in list_drops(settings.drop_roots):
        if found.key == drop:
            return found
    raise ConfigError(f"{drop}: neither a drop folder nor the key of a drop under DROPSYNC_DROP_ROOTS")


def readiness(path: Path, ready_files: tuple[str, ...], quiet_seconds: float | None, now: float | None = None) -> Readiness:
    """Ready on a sentinel (an rsync exit code must read 0) or after a quiet period. A sentinel is
    the drop's own regular file: a symlink, FIFO or folder at its name does not count."""
    present = [name for name in ready_files if is_regular(path / name)]
    # A failed rsync outranks any other sentinel, whatever the order of DROPSYNC_READY_FILES.
    if ".metadata_rsync_exitcode" in present and _exit_code(path / ".metadata_rsync_exitcode") != "0":
        return Readiness.TRANSFER_FAILED
    if present:
        return Readiness.READY
    if quiet_seconds is not None:
        newest = max((e.stat(follow_symlinks=False).st_mtime for e in _walk_files(path)), default=0.0)
        if (time.time() if now is None else now) - newest >= quiet_seconds:
            return Readiness.READY
    return Readiness.WAITING


def is_regular(path: Path) -> bool:
    """True when `path` is a regular file itself (a symlink, FIFO or folder at its name is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _exit_code(path: Path) -> str | None:
    """The rsync exit code a sentinel records, read without following a link or blocking (None:
    it stopped being a small regular file since it was seen: the transfer is not known good)."""
    try:
        return read_regular(path, EXIT_CODE_BYTES, str(path)).decode("utf-8", "replace").strip()
    except ConfigError:
        return None


def candidate_files(drop_dir: Path, pattern: str) -> list[Candidate]:
    """Files under the drop matching the glob; sidecars, `sync.yml` and our temps never are.
    Symlinks (inside the drop or not) and special files are held `unsafe_path`, folders that
    cannot be listed `unreadable` (whatever the glob), odd names `bad_name`."""
    regex = glob_regex(pattern)
    root = str(drop_dir)
    skip = len(os.path.join(root, ""))  # entry paths are root + "/" + relpath (os.relpath is slow)
    out: list[Candidate] = []
    for entry in _walk_files(drop_dir, out, skip):
        rel = entry.path[skip:].replace(os.sep, "/")
        if rel == CONFIG_NAME or rel.endswith(SIDECAR_SUFFIXES) or TEMP_MARKER in entry.name:
            continue
        if not regex.fullmatch(rel):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone since it was listed
        except OSError as err:
            if err.errno not in _UNREADABLE:
                raise
            # Listed, but its folder may not be searched (no x bit) or the disk fails: held.
            out.append(_replace(_candidate(rel, entry.path, entry.name, None), Reason.UNREADABLE))
            continue
        out.append(_candidate(rel, entry.path, entry.name, st))
    out.sort(key=lambda c: c.relpath)
    return out


def _candidate(rel: str, path: str, name: str, st: os.stat_result | None) -> Candidate:
    """The candidate of one listed file (`st` None: it could not be stat'ed)."""
    held = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        held = Reason.UNSAFE_PATH  # a symlink, FIFO, socket or device is never opened
    if _bad_name(path, name):
        held, rel, path = Reason.BAD_NAME, printable(rel), printable(path)
    if st is None:
        return Candidate(rel, path, 0, 0.0, held=held)
    return Candidate(rel, path, st.st_size, st.st_mtime, st.st_dev, st.st_ino, st.st_ctime, held)


def _replace(cand: Candidate, reason: Reason) -> Candidate:
    """`cand` held for `reason`, unless its name already holds it (`bad_name` is shown escaped)."""
    return cand if cand.held is Reason.BAD_NAME else dataclasses.replace(cand, held=reason)


def _bad_name(path: str, name: str) -> bool:
    """Not UTF-8, too long for its sidecar's name, or a path over PATH_MAX."""
    try:
        encoded, path_bytes = name.encode("utf-8"), path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return len(encoded) + _LONGEST_SIDECAR > NAME_MAX or len(path_bytes) >= PATH_MAX


def printable(text: str) -> str:
    """A file name as valid UTF-8 text: undecodable bytes shown as `\\xNN`."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def fingerprint(candidates: list[Candidate]) -> str:
    """A digest of the candidate files' names, sizes and mtimes (not folder mtimes)."""
    h = hashlib.sha256()
    for c in candidates:
        h.update(f"{c.relpath}\0{c.size}\0{c.mtime:.6f}\n".encode())
    return h.hexdigest()


def _walk_files(top: Path, held: list[Candidate] | None = None, skip: int = 0):
    """Every non-folder entry below `top`, never descending through a symlinked folder. A folder
    that cannot be listed is added to `held` as `unreadable` (`bad_name` when its path is too
    long), or raises when no `held` list is given."""
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError as err:
            if held is None or folder == str(top):
                raise
            reason = Reason.BAD_NAME if err.errno == errno.ENAMETOOLONG else Reason.UNREADABLE
            held.append(Candidate(printable(folder[skip:].replace(os.sep, "/")), printable(folder), 0, 0.0, held=reason,
                                  folder=True))
            continue
        with it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    yield entry


@lru_cache(maxsize=64)
def glob_regex(pattern: str) -> BoundedPattern:
    """Translate a glob with `**` (any depth, including none) into a regex on `/` paths; each
    match is time-bounded and an invalid class like `[z-a]` is a ConfigError (the glob is
    sync.yml's `drop_filename_filter`: untrusted)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            while pattern.startswith("**/", i):  # `**/**/` is `**/`; repeated, it backtracks for ages
                i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return compile_bounded("".join(out), f"drop_filename_filter {pattern!r}")


def key_of(settings: Settings, drop: str) -> str:
    """The partition key of a drop given as a folder path, or `drop` itself (a key)."""
    return resolve_drop(settings, drop).key if Path(drop).is_dir() else drop
