"""Micro-benchmark: `stream_archive` alone (tar → gpg, with and without the concurrent validation)
against `gpg --symmetric` reading the same bytes from a file, on a small drop (default 256 MiB).

Prints wall seconds, MB/s and the CPU seconds of this process and its children per trial, in
alternating order, with the load average. For before/after comparisons of the archive stream:

    .venv/bin/python -m benchmarks.archive_stream [--mib 256] [--small 0] [--trials 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, KiB, MiB, make_files  # noqa: E402
from dropsync_dagster.core.archive.gpg import find_gpg, passphrase_fd  # noqa: E402
from dropsync_dagster.core.archive.stream import stream_archive  # noqa: E402
from dropsync_dagster.core.integrity.hashing import hash_files  # noqa: E402

PASSPHRASE = "5e" * 32


def cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ours(drop: Path, members: list[str], expected: dict[str, str], out: Path, home: str, validate: bool) -> tuple[float, float]:
    fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    c0, t0 = cpu(), time.perf_counter()
    try:
        stream_archive(drop, members, expected, fd, PASSPHRASE, find_gpg(home), validate=validate)
    finally:
        os.close(fd)
    return time.perf_counter() - t0, cpu() - c0


def gpg_alone(drop: Path, members: list[str], out: Path, home: str) -> tuple[float, float]:
    """gpg reading one member straight from its file (no tar, no Python in the byte path)."""
    gpg = find_gpg(home)
    c0, t0 = cpu(), time.perf_counter()
    with open(drop / members[0], "rb") as src, open(out, "wb") as sink, passphrase_fd(PASSPHRASE) as pfd:
        subprocess.run(gpg.command("--symmetric", "--cipher-algo", "AES256", "--compress-algo", "none",
                                   *gpg.symmetric_args(pfd)), stdin=src, stdout=sink, pass_fds=(pfd,), check=True)
        os.fsync(sink.fileno())
    return time.perf_counter() - t0, cpu() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "archive_stream")
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--small", type=int, default=0, help="also this many 16 KiB files")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for the archive (e.g. /dev/shm: CPU only)")
    parser.add_argument("--pipe-size", type=int, default=None, help="override gpg.PIPE_SIZE (65536: the kernel default)")
    args = parser.parse_args()
    if args.pipe_size:
        import dropsync_dagster.core.archive.gpg as gpg_module
        gpg_module.PIPE_SIZE = args.pipe_size
    work = args.dir.resolve()
    drop = work / f"drop_{args.mib}_{args.small}"
    if not drop.exists():
        make_files(drop / "big", 1, args.mib * MiB)
        if args.small:
            make_files(drop / "small", args.small, 16 * KiB)
    home = work / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    members = sorted(str(p.relative_to(drop)) for p in drop.rglob("*") if p.is_file())
    digests = hash_files([(drop / m, False) for m in members])
    expected = {m: digests[drop / m].blake3 for m in members}
    size = sum((drop / m).stat().st_size for m in members)
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {size / MiB:.0f} MiB in {len(members)} files, "
          f"load {os.getloadavg()}, pipe {args.pipe_size or 'default'}, out {args.out or work}", flush=True)
    rows: dict[str, list[tuple[float, float]]] = {"gpg alone": [], "stream": [], "stream+validate": []}
    for trial in range(args.trials):
        order = list(rows) if trial % 2 == 0 else list(reversed(rows))
        for name in order:
            out = (args.out or work) / "out.gpg"
            if name == "gpg alone":
                rows[name].append(gpg_alone(drop, ["big/f00000.bin"], out, str(home)))
            else:
                rows[name].append(ours(drop, members, expected, out, str(home), name == "stream+validate"))
            wall, used = rows[name][-1]
            print(f"  {name:16} {wall:6.2f} s  {size / wall / 1e6:6.0f} MB/s  cpu {used:5.2f} s", flush=True)
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        used = statistics.median(v[1] for v in values)
        print(f"| {name} | {wall:.2f} s | {size / wall / 1e6:.0f} MB/s | cpu {used:.2f} s |")
    print(f"# load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
