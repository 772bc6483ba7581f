"""Byte-progress reporting: steps report bytes; whoever runs them in-process may show a bar.

The CLI installs a sink (rich progress bars with bytes/s); under the daemon there is none and
reporting costs one function call per buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

OnBytes = Callable[[int], None]
SinkFactory = Callable[[str, int], tuple[OnBytes, Callable[[], None]]]

_sink: SinkFactory | None = None
_lock = threading.Lock()


def install(sink: SinkFactory | None) -> None:
    """Install (or remove, with None) the factory that makes a progress callback per task."""
    global _sink
    _sink = sink


@contextmanager
def task(label: str, total_bytes: int) -> Iterator[OnBytes | None]:
    """A thread-safe `on_bytes` callback for one task, or None when nobody is watching."""
    if _sink is None:
        yield None
        return
    advance, close = _sink(label, total_bytes)

    def on_bytes(n: int) -> None:
        with _lock:
            advance(n)

    try:
        yield on_bytes
    finally:
        close()
