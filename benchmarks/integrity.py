"""Benchmark: dropsync's hash + verified copy against `cp -r` + `sync` of the same data.

Data: 4 x 512 MiB + 2,000 x 16 KiB (times `--scale`). Each pair runs both sides on each part, in
alternating order; the page cache cannot be dropped without root, so both sides read warm
sources, and destinations are deleted (and synced) between runs. Run from the repository root:
`python -m benchmarks.integrity [--dir DIR] [--scale S] [--pairs N] [--md5]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import (  # noqa: E402
    DEFAULT_BENCH_DIR,
    KiB,
    MiB,
    drop_caches_possible,
    filesystem_of,
    machine,
    make_files,
    remove_tree,
)
from dropsync_dagster.core.integrity.hashing import hash_files  # noqa: E402
from dropsync_dagster.core.integrity.publish import (  # noqa: E402
    CopyItem,
    CopyOutcome,
    copy_verified,
    copy_verified_batch,
)


def dropsync_copy(source: Path, dest: Path, md5: bool, batch: bool = True) -> dict[str, float]:
    """Hash every file (one read), then verified copies with sidecars; seconds per phase."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    started = time.perf_counter()
    digests = hash_files([(p, md5) for p in files])
    hashed = time.perf_counter()
    kind = "md5" if md5 else "blake3"
    items = [CopyItem(p, dest / p.relative_to(source), digests[p], kind) for p in files]
    if batch:
        outcomes = copy_verified_batch(items)
    else:
        outcomes = [copy_verified(*item) for item in items]
    if set(outcomes) != {CopyOutcome.COPIED}:
        raise SystemExit(f"benchmark copy did not copy everything: {sorted(set(outcomes))}")
    done = time.perf_counter()
    return {"hash": hashed - started, "copy": done - hashed, "total": done - started}


def cp_sync(source: Path, dest: Path) -> dict[str, float]:
    """`cp -r` then `sync`, the baseline."""
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(dest)], check=True)
    subprocess.run(["sync"], check=True)
    return {"total": time.perf_counter() - started}


def alternate(
    name_a: str, run_a: Callable[[Path], dict[str, float]], name_b: str, run_b: Callable[[Path], dict[str, float]],
    out: Path, pairs: int,
) -> list[dict[str, dict[str, float]]]:
    """Run both sides `pairs` times, swapping which goes first; destinations removed in between."""
    results = []
    for i in range(pairs):
        order = [(name_a, run_a), (name_b, run_b)] if i % 2 == 0 else [(name_b, run_b), (name_a, run_a)]
        pair: dict[str, dict[str, float]] = {}
        for name, run in order:
            remove_tree(out)
            out.mkdir(parents=True)
            pair[name] = run(out / "dest")
        remove_tree(out)
        results.append(pair)
    return results


def main() -> None:
    """Build the data, time both sides, print tables, clean up."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR, help="work folder (default ./.bench)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies big-file size and small-file count")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--md5", action="store_true", help="also compute MD5 and write .md5 sidecars")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    args = parser.parse_args()

    root = args.dir.resolve() / "integrity"
    remove_tree(root)
    big_size, small_count = int(512 * MiB * args.scale), max(1, int(2000 * args.scale))
    try:
        parts = {
            f"4 x {big_size // MiB} MiB": make_files(root / "src-big" / "big", 4, big_size, "big"),
            f"{small_count} x 16 KiB": make_files(root / "src-small" / "small", small_count, 16 * KiB, "s"),
        }
        print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}; {machine()}; {filesystem_of(root)}")
        print(f"# page cache droppable: {drop_caches_possible()} (not dropped: warm sources on both sides); "
              f"md5: {args.md5}; pairs: {args.pairs}; load average at start: {os.getloadavg()[0]:.1f}\n")
        totals: dict[str, list[float]] = {"dropsync": [0.0] * args.pairs, "cp -r + sync": [0.0] * args.pairs}
        print("| data | pair | dropsync hash s | dropsync copy s | dropsync total s | cp -r + sync s | ratio |")
        print("|---|---|---|---|---|---|---|")
        for label, files in parts.items():
            source = files[0].parent.parent
            results = alternate(
                "dropsync", lambda d, s=source: dropsync_copy(s, d, args.md5),
                "cp -r + sync", lambda d, s=source: cp_sync(s, d),
                root / "out", args.pairs,
            )
            for i, r in enumerate(results):
                ours, cp = r["dropsync"], r["cp -r + sync"]
                totals["dropsync"][i] += ours["total"]
                totals["cp -r + sync"][i] += cp["total"]
                print(f"| {label} | {i + 1} | {ours['hash']:.3f} | {ours['copy']:.3f} | {ours['total']:.3f} "
                      f"| {cp['total']:.3f} | {ours['total'] / cp['total']:.2f} |")
            ratios = [r["dropsync"]["total"] / r["cp -r + sync"]["total"] for r in results]
            print(f"| {label} | median | | | | | **{statistics.median(ratios):.2f}** |")
        ratios = [a / b for a, b in zip(totals["dropsync"], totals["cp -r + sync"])]
        print(f"| all | median of {args.pairs} | | | {statistics.median(totals['dropsync']):.3f} "
              f"| {statistics.median(totals['cp -r + sync']):.3f} | **{statistics.median(ratios):.2f}** |\n")

        small = parts[f"{small_count} x 16 KiB"][0].parent.parent
        print("| small files: durability | pair | seconds (hash + copy) |")
        print("|---|---|---|")
        results = alternate(
            "batch (syncfs)", lambda d: dropsync_copy(small, d, args.md5, batch=True),
            "per file (fsync)", lambda d: dropsync_copy(small, d, args.md5, batch=False),
            root / "out", args.pairs,
        )
        for name in ("batch (syncfs)", "per file (fsync)"):
            runs = [r[name]["total"] for r in results]
            print(f"| {name} | median of {len(runs)} | {statistics.median(runs):.3f} |")
        print(f"\n# load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            remove_tree(root)


if __name__ == "__main__":
    main()
