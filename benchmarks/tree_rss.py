"""Wall time and peak memory of a whole process tree (a command and every process it starts, gpg
included), sampled from /proc; and the archive child the memory target runs in a fresh process.

    .venv/bin/python -m benchmarks.tree_rss archive DROP OUT GNUPGHOME RECIPIENT
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_PAGE = os.sysconf("SC_PAGE_SIZE")
_EVERY = 0.05  # seconds between samples


class Measured(NamedTuple):
    seconds: float
    returncode: int
    stderr: str
    peak_mib: float  # highest sum of RSS over the tree at one sample
    max_single_mib: float  # the largest single process's own peak (wait4 / VmHWM)
    cpu_seconds: float  # user + system of the command and every descendant it waited for (wait4)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between listing and reading
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of one process in bytes; zeros once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    kib = lambda key: int(fields.get(key, "0 kB").split()[0])  # noqa: E731
    return kib("VmRSS") * 1024, kib("VmHWM") * 1024


def _tree_sample(root: int) -> tuple[int, int]:
    tree, total, single = _children(), 0, 0
    todo = [root]
    while todo:
        pid = todo.pop()
        rss, hwm = _rss(pid)
        total += rss
        single = max(single, hwm)
        todo.extend(tree.get(pid, []))
    return total, single


def run_measured(cmd: list[str], env: dict[str, str], stdout_to_null: bool = False) -> Measured:
    """Run `cmd`, sampling the RSS of its whole tree every 50 ms; stdout to /dev/null or discarded."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=null, stderr=err)
        peak, single, done = 0, 0, threading.Event()

        def sample() -> None:
            nonlocal peak, single
            while not done.is_set():
                total, biggest = _tree_sample(proc.pid)
                peak, single = max(peak, total), max(single, biggest)
                done.wait(_EVERY)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        single = max(single, usage.ru_maxrss * 1024)
        return Measured(seconds, proc.returncode, err.read().decode(errors="replace"), peak / 2**20, single / 2**20,
                        usage.ru_utime + usage.ru_stime)


def archive_child(drop: Path, out: Path, gnupghome: str, recipient: str) -> None:
    """write_archive of every file under `drop` (recipient wrap, tar → gpg, concurrent validation)."""
    from dropsync_dagster.core.archive.generations import select_members, write_archive
    from dropsync_dagster.core.integrity.hashing import hash_files

    files = [p for p in drop.rglob("*") if p.is_file()]
    expected = {str(p.relative_to(drop)): d.blake3 for p, d in hash_files([(p, False) for p in files]).items()}
    write_archive(drop, "bench-drop", select_members(drop, [], set(expected)), expected,
                  out / "archives", out / "keys", [recipient], gnupghome)


if __name__ == "__main__":
    if sys.argv[1:2] != ["archive"] or len(sys.argv) != 6:
        raise SystemExit(__doc__)
    archive_child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5])
