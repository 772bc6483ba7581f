"""What changes while `dropsync sync` waits at its prompt is seen by the run: it plans again
after the confirmation (a run handed the plan it showed once synced bytes failing a `.md5` that
arrived meanwhile). Driven as a person does: the real CLI, its question answered on stdin."""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.test_cli_sync import plain_drop, target


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """What the process wrote to `fd` up to and including `marker` (its question)."""
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {timeout:.0f} s; it wrote: {seen[-2000:]!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"it exited before asking; it wrote: {seen[-2000:]!r}"
            seen += chunk
    return seen


def test_a_md5_arriving_while_the_prompt_waits_is_checked(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    data = drop.add_file(fastq_relpath(read=1))  # its `.md5` has not arrived yet
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        read_until(proc.stdout.fileno(), b"Sync ", 120)  # the plan is shown; the question waits
        damaged = hashlib.md5(data.read_bytes() + b"the bytes the sender had").hexdigest()
        Path(f"{data}.md5").write_text(f"{damaged}  {data.name}\n")  # the uploader's `.md5` arrives meanwhile
        out, _ = proc.communicate(b"y\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out.decode()[-3000:]  # held back
    assert b"md5_mismatch" in out
    assert not target(drop, 1).exists() and data.exists()
