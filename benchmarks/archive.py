"""Benchmark: dropsync's archive step against `tar -cf - DROP | gpg --symmetric` on the same data.

Data: one drop of 7 x 512 MiB + 2,048 x 256 KiB = 4 GiB (times `--scale`). Each round runs, in
rotating order: (1) `write_archive` with its concurrent validation, (2) `stream_archive` without
validation, (3) the baseline pipeline (timed with and without an fsync of its output; ours always
fsyncs). Ours run in a fresh subprocess each, so the peak RSS reported is that process's own.
Run from the repository root: `python -m benchmarks.archive [--dir DIR] [--scale S] [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, KiB, MiB, filesystem_of, machine, make_files, remove_tree  # noqa: E402
from dropsync_dagster.core.archive.generations import select_members, write_archive  # noqa: E402
from dropsync_dagster.core.archive.stream import stream_archive  # noqa: E402
from dropsync_dagster.core.archive.gpg import find_gpg, passphrase_fd  # noqa: E402
from dropsync_dagster.core.integrity.hashing import hash_files  # noqa: E402

RECIPIENT = "bench@dropsync.test"
PASSPHRASE = "5e" * 32  # the baseline's and the unvalidated stream's passphrase


def child(mode: str, drop: Path, out: Path, home: str, expected_file: Path) -> None:
    """One timed run of ours in this (fresh) process; prints seconds and peak RSS as JSON."""
    expected = json.loads(expected_file.read_text())
    started = time.perf_counter()
    report: dict[str, float] = {}
    if mode == "validated":
        result = write_archive(drop, "bench-drop", select_members(drop, [], set(expected)), expected,
                               out / "archives", out / "keys", [RECIPIENT], home)
        report |= {"encrypt": result.encrypt_seconds, "validate": result.validate_seconds}
    else:
        members = select_members(drop, [], set(expected))
        fd = os.open(out / "bench.tar.gpg", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            outcome = stream_archive(drop, members, expected, fd, PASSPHRASE, find_gpg(home), validate=False)
        finally:
            os.close(fd)
        report |= {"encrypt": outcome.encrypt_seconds}
    report["total"] = time.perf_counter() - started
    report["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))


def run_ours(mode: str, drop: Path, out: Path, home: str, expected_file: Path) -> dict[str, float]:
    """Run `child` in a new interpreter and read its report."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.archive", "--child", mode, str(drop), str(out), home, str(expected_file)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(proc.stdout.splitlines()[-1])


def run_baseline(drop: Path, out: Path, home: str) -> dict[str, float]:
    """`tar -cf - DROP | gpg --symmetric ...` into a file; seconds without and with its fsync."""
    gpg = find_gpg(home)
    target = out / "baseline.tar.gpg"
    started = time.perf_counter()
    with open(target, "wb") as sink, passphrase_fd(PASSPHRASE) as pfd:
        tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(drop.parent), drop.name], stdout=subprocess.PIPE)
        enc = subprocess.Popen(
            gpg.command("--symmetric", "--cipher-algo", "AES256", "--compress-algo", "none", *gpg.symmetric_args(pfd)),
            stdin=tar.stdout, stdout=sink, pass_fds=(pfd,),
        )
        tar.stdout.close()
        if enc.wait() != 0 or tar.wait() != 0:
            raise SystemExit("baseline pipeline failed")
        piped = time.perf_counter() - started
        os.fsync(sink.fileno())
    return {"total": piped, "total_fsync": time.perf_counter() - started}


def timed_cpu(side: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run one side and add the CPU seconds of every process it ran (gpg included): on a shared,
    busy machine CPU time says more than wall time about what the side costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = side()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report["load"] = os.getloadavg()[0]
    return report


def make_keyring(home: Path) -> str:
    """A throwaway keyring with one recipient key pair (no passphrase)."""
    home.mkdir(mode=0o700, parents=True)
    subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", f"Bench <{RECIPIENT}>", "future-default", "default", "never"],
        check=True, capture_output=True,
    )
    return str(home)


def main() -> None:
    """Build the drop, run the three sides in rotating order, print a table, clean up."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR, help="work folder (default ./.bench)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies file sizes and the small-file count")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, drop, out, home, expected = args.child
        child(mode, Path(drop), Path(out), home, Path(expected))
        return

    root = args.dir.resolve() / "archive"
    remove_tree(root)
    drop, out = root / "drop", root / "out"
    home = ""
    try:
        big = make_files(drop / "big", 7, int(512 * MiB * args.scale), "big")
        small = make_files(drop / "small", max(1, int(2048 * args.scale)), int(256 * KiB * args.scale) or 1, "s")
        size = sum(p.stat().st_size for p in big + small)
        home = make_keyring(root / "gnupg")
        expected_file = root / "expected.json"
        digests = hash_files([(p, False) for p in big + small])
        expected_file.write_text(json.dumps({str(p.relative_to(drop)): d.blake3 for p, d in digests.items()}))
        sides = {
            "ours, validated": lambda: run_ours("validated", drop, out, home, expected_file),
            "ours, no validation": lambda: run_ours("unvalidated", drop, out, home, expected_file),
            "baseline tar + gpg": lambda: run_baseline(drop, out, home),
        }
        version = ".".join(map(str, find_gpg().version))
        print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}; {machine()}; {filesystem_of(root)}; gpg {version}")
        print(f"# drop: {len(big)} x {big[0].stat().st_size // MiB} MiB + {len(small)} x "
              f"{small[0].stat().st_size // KiB} KiB = {size / MiB:.0f} MiB; load average at start "
              f"{os.getloadavg()[0]:.2f}\n")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        names = list(sides)
        for i in range(args.rounds):
            for name in names[i % 3:] + names[: i % 3]:
                remove_tree(out)
                (out / "archives").mkdir(parents=True)
                runs[name].append(timed_cpu(sides[name]))
        remove_tree(out)
        report(runs, size, args.rounds)
    finally:
        if home:
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
        remove_tree(root)


def report(runs: dict[str, list[dict[str, float]]], size: int, rounds: int) -> None:
    """Print one row per run and the medians, ratios against the baseline."""
    print("| side | round | total s | MiB/s | encrypt s | validate s | CPU s (all processes) | peak RSS MiB | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, results in runs.items():
        for i, r in enumerate(results):
            print(f"| {name} | {i + 1} | {r['total']:.2f} | {size / MiB / r['total']:.0f} | {r.get('encrypt', 0):.2f} "
                  f"| {r.get('validate', 0):.2f} | {r['cpu']:.2f} | {r.get('rss_mib', 0):.0f} | {r['load']:.1f} |")
    base = statistics.median(r["total"] for r in runs["baseline tar + gpg"])
    base_fsync = statistics.median(r["total_fsync"] for r in runs["baseline tar + gpg"])
    print(f"\nbaseline median: {base:.2f} s without fsync, {base_fsync:.2f} s with fsync of its output")
    base_cpu = statistics.median(r["cpu"] for r in runs["baseline tar + gpg"])
    for name in ("ours, validated", "ours, no validation"):
        ours = statistics.median(r["total"] for r in runs[name])
        cpu = statistics.median(r["cpu"] for r in runs[name])
        rss = max(r["rss_mib"] for r in runs[name])
        print(f"{name}: median {ours:.2f} s = {ours / base:.2f}x baseline ({ours / base_fsync:.2f}x with its fsync); "
              f"CPU {cpu:.2f} s = {cpu / base_cpu:.2f}x baseline's; peak RSS {rss:.0f} MiB over {rounds} runs")


if __name__ == "__main__":
    main()
