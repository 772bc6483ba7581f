"""Single-pass multi-digest hashing: BLAKE3 always, MD5 in the same read when asked."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple, TypeVar

from blake3 import blake3

from dropsync_dagster.core.errors import IntegrityError
from dropsync_dagster.core.model import Digests, Identity, Reason
from dropsync_dagster.core.drops.reads import HeldFile, identity_of, open_source

OnBytes = Callable[[int], None]
T = TypeVar("T")


class Hashed(NamedTuple):
    """One planned source hashed: its digests and identity, or why it is held."""

    digests: Digests | None
    identity: Identity | None
    reason: Reason | None = None

BUFFER_SIZE = 8 * 1024 * 1024  # one reused buffer per thread
THREADED_HASH_FROM = 64 * 1024 * 1024  # BLAKE3's own threads pay off only on big files
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
BATCH_BYTES = 32 * 1024 * 1024  # per thread task in hash_files
BATCH_FILES = 512

_local = threading.local()


def hash_file(path: Path, want_md5: bool, on_bytes: OnBytes | None = None) -> Digests:
    """Size and BLAKE3 of a file, plus MD5 when asked, from one read."""
    fd = open_read(path)
    try:
        return hash_fd(fd, want_md5, on_bytes, path)
    finally:
        os.close(fd)


def open_read(path: Path) -> int:
    """An O_RDONLY descriptor; an unreadable file is an IntegrityError naming it."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO never blocks
    except OSError as err:
        raise IntegrityError(f"cannot read {path}: {err.strerror}") from err


def hash_files(
    paths_and_flags: Sequence[tuple[Path, bool]],
    workers: int = DEFAULT_WORKERS,
    on_bytes: OnBytes | None = None,
) -> dict[Path, Digests]:
    """`hash_file` over many files in parallel threads; the first error propagates, naming its file.
    `on_bytes` may be called from several threads at once."""
    jobs = [(path, (path, md5)) for path, md5 in paths_and_flags]
    return _in_threads(jobs, lambda job: hash_file(job[0], job[1], on_bytes), workers)


def hash_source(path: Path, want_md5: bool, planned: Identity | None, on_bytes: OnBytes | None = None) -> Hashed:
    """Digests and identity of a planned source, read only when it is still the planned regular
    file (no link followed, no FIFO opened blocking); otherwise why it is held."""
    try:
        fd, st = open_source(path, planned)
    except HeldFile as held:
        return Hashed(None, None, held.reason)
    try:
        return Hashed(hash_fd(fd, want_md5, on_bytes, path), identity_of(st))
    except IntegrityError:
        return Hashed(None, None, Reason.UNREADABLE)  # a read error (EIO) part-way through
    finally:
        os.close(fd)


def hash_sources(
    jobs: Sequence[tuple[Path, bool, Identity | None]], workers: int = DEFAULT_WORKERS, on_bytes: OnBytes | None = None
) -> dict[Path, Hashed]:
    """`hash_source` over many files in parallel threads; a held file never stops the others."""
    keyed = [(path, (path, md5, planned)) for path, md5, planned in jobs]
    return _in_threads(keyed, lambda job: hash_source(*job, on_bytes), workers)


def _in_threads(jobs: Sequence[tuple[Path, tuple]], work: Callable[[tuple], T], workers: int) -> dict[Path, T]:
    def run(batch: list[tuple[Path, tuple]]) -> list[tuple[Path, T]]:
        return [(path, work(job)) for path, job in batch]

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hash") as pool:
        futures = [pool.submit(run, batch) for batch in _batches(jobs)]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return {path: result for future in futures for path, result in future.result()}


def _batches(items: Sequence[tuple[Path, tuple]]) -> Iterator[list[tuple[Path, tuple]]]:
    """Tasks of about BATCH_BYTES each: a thread hand-off costs more than hashing a small file
    from the page cache (10,000 x 16 KiB: 0.1 s in one thread, 0.6 s as one task per file)."""
    batch: list[tuple[Path, tuple]] = []
    size = 0
    for item in items:
        try:
            size += os.stat(item[0], follow_symlinks=False).st_size
        except OSError:
            size += BATCH_BYTES  # let the worker report it, in a batch of its own
        batch.append(item)
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_fd(fd: int, want_md5: bool, on_bytes: OnBytes | None, path: Path) -> Digests:
    """Digests of an open file from offset 0, whatever its current position."""
    size_hint = os.fstat(fd).st_size
    b3 = blake3(max_threads=blake3.AUTO if size_hint >= THREADED_HASH_FROM else 1)
    md5 = hashlib.md5() if want_md5 else None
    view = read_buffer()
    offset = 0
    while True:
        try:
            n = os.preadv(fd, [view], offset)
        except OSError as err:
            raise IntegrityError(f"cannot read {path}: {err.strerror}") from err
        if n == 0:
            break
        chunk = view[:n]
        b3.update(chunk)
        if md5 is not None:
            md5.update(chunk)
        offset += n
        if on_bytes is not None:
            on_bytes(n)
    return Digests(size=offset, blake3=b3.hexdigest(), md5=md5.hexdigest() if md5 else None)


def read_buffer() -> memoryview:
    # Reused per thread: allocating 8 MiB per small file would cost more than reading it.
    view = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(BUFFER_SIZE))
    return view
