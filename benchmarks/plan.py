"""Benchmark: plan a 100,000-file drop (targets: <= 10 s, <= 1 GiB peak RSS).

The drop is built once under `.bench/plan` (git-ignored): tiny FASTQ-like files in nested folders,
named like the seed README's example, planned with its `sync.yml` minus LabKey
(`filename_sequence: run`; 1,000 `<run>` stems of 100 files each). Timed, each in a fresh process
so that peak RSS is the planner's own: `make_plan` in-process, and `dropsync plan --json >
/dev/null`. A second round pre-fills the repository with identical copies of a share of the
targets (a re-run after a crash: those files are compared byte for byte and come out
`already_synced`). Wall seconds depend on what else the machine runs; CPU seconds much less so,
and the load average is printed beside them. The data is removed at the end unless `--keep`.
Run from the repository root: `python -m benchmarks.plan [--files N] [--repeat R] [--keep]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import DEFAULT_BENCH_DIR, filesystem_of, machine, remove_tree  # noqa: E402
from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config  # noqa: E402

GiB = 1 << 30
PHASES = ("btki", "ctrl")
DATES = tuple(f"2026-11-{d:02d}" for d in range(16, 21))
SEQS = tuple(f"SEQ_{c * 5}" for c in "ABCDEFGHIJ")
LIBS = tuple(f"L{a}{b}_LIBRAR" for a in "ABCDE" for b in "ABCDE")  # 25 libraries: [A-Z]{3}_[A-Z]{6}

# Runs in a fresh interpreter: plan the drop; wall and CPU seconds, peak RSS (VmHWM: this
# process's own memory only; ru_maxrss would carry over the forking parent's), the reasons.
_MEASURE = """
import json, os, resource, sys, time
from pathlib import Path
from dropsync_dagster.core.syncyml.schema import load_config
from dropsync_dagster.core.drops.discovery import DropFolder
from dropsync_dagster.core.plan.planner import make_plan
from dropsync_dagster.deployment import settings_from_env
def hwm():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) * 1024
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
path = Path(sys.argv[1])
before, cpu0, start = hwm(), cpu(), time.perf_counter()
plan = make_plan(DropFolder("bench-drop", "bench", path), load_config(path / "sync.yml"), settings_from_env(os.environ))
seconds, cpu1 = time.perf_counter() - start, cpu()
print(json.dumps({"seconds": seconds, "cpu": cpu1 - cpu0, "peak_rss": hwm(), "rss_before": before,
                  "counts": plan.counts()}))
"""

# Fills the repository in a child process, so that this (forking) process stays small.
_PREFILL = """
import json, shutil, sys
from pathlib import Path
entries = json.load(sys.stdin)["entries"]
chosen = entries[: int(len(entries) * float(sys.argv[1]))]
for entry in chosen:
    Path(entry["target"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(entry["source"], entry["target"])
print(len(chosen))
"""


def file_names(count: int) -> list[str]:
    """`count` drop-relative names matching the seed regex: 100 folders of 1,000 files at 100,000."""
    names = []
    for phase in PHASES:
        for date in DATES:
            for seq in SEQS:
                for lib in LIBS:
                    for sample in range(1, 6):
                        for lane in range(1, 5):
                            for read in (1, 2):
                                names.append(fastq_relpath(phase, lib, seq, sample=sample, lane=lane, read=read,
                                                           date=date))
    if count > len(names):
        raise SystemExit(f"at most {len(names)} files")
    return names[:count]


def build(base: Path, count: int) -> Drop:
    """Build the drop once; a drop with the same file count is reused."""
    drop = make_drop(base)
    # The seed example without LabKey: this measures planning, not a LabKey server.
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.mark_ready()  # every run checks readiness (planning_scale materialises drop_manifest)
    marker = base / f".built-{count}"
    if not marker.exists():
        for relpath in file_names(count):
            path = drop.path / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(fastq_content(relpath))
        marker.touch()
    return drop


def measure_core(drop: Drop) -> dict:
    """make_plan in a fresh process: seconds and peak RSS."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(drop.path)], env=_env(drop),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def measure_cli(drop: Drop) -> dict:
    """`dropsync plan DROP --json > /dev/null` (the console script): wall and CPU seconds, peak RSS
    from wait4 (an upper bound: it includes this small parent's RSS at fork)."""
    command = [str(Path(sys.executable).with_name("dropsync")), "plan", str(drop.path), "--json"]
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(command, env=_env(drop), stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"dropsync plan failed ({code}): {proc.stderr.read().decode()}")
    proc.stderr.close()
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024}


def prefill(drop: Drop, share: float) -> int:
    """Copy identical content to the targets of the first `share` of the files (a crashed run)."""
    doc = subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", "plan", str(drop.path), "--json"],
                         env=_env(drop), capture_output=True, check=False).stdout
    out = subprocess.run([sys.executable, "-c", _PREFILL, str(share)], input=doc, capture_output=True, check=True)
    return int(out.stdout)


def _env(drop: Drop) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
    return {**base, **drop.env()}


def summary(label: str, runs: list[dict]) -> str:
    """One table row: wall seconds min/median/max, CPU seconds median, the highest peak RSS."""
    secs = [r["seconds"] for r in runs]
    rss = max(r["peak_rss"] for r in runs)
    return (f"| {label} | {min(secs):.2f} | {statistics.median(secs):.2f} | {max(secs):.2f} | "
            f"{statistics.median(r['cpu'] for r in runs):.2f} | {rss / 2**20:.0f} MiB |")


def own_rss() -> int:
    """This process's current RSS (what a forked child's ru_maxrss starts from)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) * 1024


def main() -> None:
    """Build, time, report, clean up."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prefill", type=float, default=0.5, help="share of targets already in the repository")
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "plan")
    parser.add_argument("--keep", action="store_true", help="keep the data for another run")
    args = parser.parse_args()
    started = time.perf_counter()
    drop = build(args.dir, args.files)
    built = time.perf_counter() - started
    print(f"# plan benchmark, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
          f"{filesystem_of(args.dir)}")
    print(f"drop: {args.files} files under {drop.path} (built or reused in {built:.1f} s); "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| what | min s | median s | max s | CPU s | peak RSS |\n|---|---|---|---|---|---|")
    rounds = [("empty repository", 0.0), (f"{args.prefill:.0%} already in the repository", args.prefill)]
    try:
        for label, share in rounds:
            if share:
                print(f"<!-- prefilled {prefill(drop, share)} targets -->")
            core = [measure_core(drop) for _ in range(args.repeat)]
            cli = [measure_cli(drop) for _ in range(args.repeat)]
            print(summary(f"make_plan, {label}", core))
            print(summary(f"dropsync plan --json, {label}", cli))
            print(f"<!-- counts: {core[0]['counts']}; interpreter before planning: "
                  f"{core[0]['rss_before'] / 2**20:.0f} MiB -->")
            worst = max(r["seconds"] for r in core + cli)
            heaviest = max(r["peak_rss"] for r in core + cli)
            verdict = "OK" if worst <= 10 and heaviest <= GiB else "OVER TARGET"
            print(f"<!-- {label}: worst {worst:.2f} s, peak {heaviest / 2**20:.0f} MiB: {verdict}; "
                  f"load average {os.getloadavg()[0]:.1f}; this parent's RSS {own_rss() / 2**20:.0f} MiB -->")
    finally:
        if not args.keep:
            remove_tree(args.dir)


if __name__ == "__main__":
    main()
