"""Single-pass multi-digest hashing: BLAKE3 always, MD5 in the same read when asked."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from blake3 import blake3

from dropsync_dagster.core.errors import IntegrityError
from dropsync_dagster.core.model import Digests

OnBytes = Callable[[int], None]

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
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise IntegrityError(f"cannot read {path}: {err.strerror}") from err


def hash_files(
    paths_and_flags: Sequence[tuple[Path, bool]],
    workers: int = DEFAULT_WORKERS,
    on_bytes: OnBytes | None = None,
) -> dict[Path, Digests]:
    """`hash_file` over many files in parallel threads; the first error propagates, naming its file.
    `on_bytes` may be called from several threads at once."""

    def run(batch: list[tuple[Path, bool]]) -> list[tuple[Path, Digests]]:
        return [(path, hash_file(path, md5, on_bytes)) for path, md5 in batch]

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hash") as pool:
        futures = [pool.submit(run, batch) for batch in _batches(paths_and_flags)]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return {path: digests for future in futures for path, digests in future.result()}


def _batches(items: Sequence[tuple[Path, bool]]) -> Iterator[list[tuple[Path, bool]]]:
    """Tasks of about BATCH_BYTES each: a thread hand-off costs more than hashing a small file
    from the page cache (10,000 x 16 KiB: 0.1 s in one thread, 0.6 s as one task per file)."""
    batch: list[tuple[Path, bool]] = []
    size = 0
    for item in items:
        try:
            size += os.stat(item[0]).st_size
        except OSError:
            size += BATCH_BYTES  # let hash_file report it, in a batch of its own
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
