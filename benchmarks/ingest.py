"""End-to-end ingest: `dropsync sync --do-it --yes` against `cp -r` + `sync` on the same data.

Pairs alternate in one run (ours, baseline, ours, baseline, ...) and the median ratio is printed.
Each of our trials gets a fresh drop made of hard links to the same data (set-up, not timed),
a fresh repository and processed folder. Also measures what Dagster's start-up costs: the time
to import the definitions, and a 1-file drop end to end.

    .venv/bin/python benchmarks/ingest.py [--pairs 3] [--scale 1.0] [--only large|small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import DEFAULT_BENCH_DIR, KiB, MiB, machine, make_files, remove_tree, tree_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SYNC_YML = """\
drop_filename_filter: "**/*.bin"
drop_filename_regex: "(?P<name>.+)\\\\.bin"
repository_folder: {repository}
repository_filename: "<name>.bin"
processed_folder: {processed}
"""


def build(master: Path, files: list[tuple[str, int, int]]) -> None:
    """The master copy of a drop: (subfolder, count, size) groups, plus its sync.yml."""
    if (master / ".built").exists():
        return
    remove_tree(master)
    for sub, count, size in files:
        make_files(master / sub, count, size)
    (master / ".built").touch()


def timed(cmd: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{cmd[:4]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def ours(work: Path, master: Path, trial: int) -> float:
    """One dropsync trial on a hard-linked copy of the master drop."""
    root = work / f"drops{trial}"
    drop, repo, processed = root / "drop", work / f"repo{trial}", work / f"processed{trial}"
    for folder in (root, repo, processed):
        remove_tree(folder)
    root.mkdir(parents=True)
    repo.mkdir()
    processed.mkdir()
    subprocess.run(["cp", "-al", str(master), str(drop)], check=True)
    (drop / ".built").unlink()
    (drop / "sync.yml").write_text(SYNC_YML.format(repository=repo, processed=processed))
    env = {
        **os.environ,
        "DROPSYNC_DROP_ROOTS": f"bench={root}",
        "DROPSYNC_ALLOWED_ROOTS": f"{repo}{os.pathsep}{processed}",
        "DROPSYNC_STATE_DIR": str(work / "state"),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    os.sync()
    elapsed = timed([PYTHON, "-m", "dropsync_dagster.cli", "sync", str(drop), "--do-it", "--yes"], env)
    for folder in (root, repo, processed):
        remove_tree(folder)
    return elapsed


def baseline(work: Path, master: Path) -> float:
    """`cp -r` then `sync`, the floor any verified copy is measured against."""
    target = work / "cp_target"
    remove_tree(target)
    os.sync()
    elapsed = timed(["sh", "-c", f"cp -r '{master}' '{target}' && sync"])
    remove_tree(target)
    return elapsed


def compare(name: str, work: Path, master: Path, pairs: int) -> dict:
    mine, base = [], []
    for trial in range(pairs):
        # Alternate who goes first, so neither always inherits a warm or a dirty cache.
        if trial % 2 == 0:
            mine.append(ours(work, master, trial))
            base.append(baseline(work, master))
        else:
            base.append(baseline(work, master))
            mine.append(ours(work, master, trial))
    ratios = [m / b for m, b in zip(mine, base)]
    size = tree_bytes(master)
    row = {
        "drop": name,
        "bytes": size,
        "dropsync_s": [round(x, 2) for x in mine],
        "cp_sync_s": [round(x, 2) for x in base],
        "median_ratio": round(statistics.median(ratios), 2),
    }
    print(row, flush=True)
    return row


def startup(work: Path) -> dict:
    """Dagster's own share: importing the definitions, and a 1-file drop end to end."""
    imports = statistics.median(
        timed([PYTHON, "-c", "import dropsync_dagster.definitions"]) for _ in range(3)
    )
    master = work / "master_one"
    build(master, [("one", 1, 16 * KiB)])
    one = statistics.median(ours(work, master, 100 + i) for i in range(3))
    row = {"import_definitions_s": round(imports, 2), "one_file_drop_s": round(one, 2)}
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "ingest")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply file sizes/counts (quick runs)")
    parser.add_argument("--only", choices=["large", "small"], default=None)
    parser.add_argument("--keep", action="store_true", help="keep the master data for another run")
    args = parser.parse_args()
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d')} {machine()}", flush=True)
    s = args.scale
    if args.only in (None, "large"):
        master = work / "master_large"
        build(master, [("big", 4, int(512 * MiB * s)), ("small", int(2000 * s), 16 * KiB)])
        compare("4 x 512 MiB + 2,000 x 16 KiB", work, master, args.pairs)
    if args.only in (None, "small"):
        master = work / "master_small"
        build(master, [("small", int(10_000 * s), 16 * KiB)])
        compare("10,000 x 16 KiB", work, master, args.pairs)
    startup(work)
    if not args.keep:
        remove_tree(work)


if __name__ == "__main__":
    main()
