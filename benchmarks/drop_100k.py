"""Benchmark: a 100,000-file drop end to end, this checkout against an older one, alternating.

Issue 13 asks for the end-to-end time of a 100,000-file drop against the code before the IO
manager (which parses the frozen plan once per run process instead of once per step). Both sides
run `dropsync sync DROP --do-it --yes` (no archive) on a fresh hard-linked copy of the same
master drop (100,000 × 1 KiB, `make_files`), each on its own quick-start instance, in the order
old, new, old, new… The older checkout needs its own venv:

    git worktree add /tmp/old <commit> && (cd /tmp/old && make install)
    python -m benchmarks.drop_100k --old /tmp/old/.venv/bin/dropsync [--files N] [--pairs P]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, KiB, machine, remove_tree  # noqa: E402
from benchmarks.targets import BIN, Bench, load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the older checkout's dropsync console script")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "drop_100k")
    parser.add_argument("--keep", action="store_true", help="keep the master drop for another run")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.dir, 1.0, args.pairs)
    master = bench.master(f"files_{args.files}", [("files", args.files, KiB)])
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}, {args.files} files, load {load()}")
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    for pair in range(1, args.pairs + 1):
        for side, dropsync in (("old", args.old), ("new", BIN / "dropsync")):
            run = bench.ours(master, encrypt=False, dropsync=dropsync, home=f"dagster_home_{side}")
            seconds[side].append(run.seconds)
            print(f"pair {pair} {side}: {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU, "
                  f"peak tree RSS {run.peak_mib:.0f} MiB, load {load()}", flush=True)
    old, new = statistics.median(seconds["old"]), statistics.median(seconds["new"])
    print(f"median: old {old:.1f} s, new {new:.1f} s, new/old {new / old:.2f}")
    if not args.keep:
        remove_tree(args.dir)


if __name__ == "__main__":
    main()
