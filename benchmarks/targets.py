"""Issue 15's targets, each against its baseline in one run: alternating trials (baseline, ours,
baseline, ours, …), every trial printed, the median ratio judged against the target.

    .venv/bin/python -m benchmarks.targets [--pairs 3] [--scale 1.0] [--only full,copy_large,...]

Lines (see benchmarks/README.md for the baselines' exact commands):
  full        `dropsync sync --do-it --yes` with a recipient (archive + validation) vs
              `cp -r` + the passphrase wrapped to the same recipient + `tar | gpg --symmetric` + `sync`
  copy_large  the same drop without archive vs `cp -r` + `sync`   (4 × 256 MiB + 1,000 × 16 KiB)
  copy_small  10,000 × 16 KiB without archive vs `cp -r` + `sync`
  fixed       `dropsync sync --do-it --yes` of a 1-file drop (absolute: ≤ 1.5 s)
  daemon      a 1-file drop through the daemon, ready → success (absolute: ≤ 3 s; needs Postgres)
  memory_archive  peak RSS of the process tree archiving 4 GiB (write_archive + both gpg)
  memory_plan     peak RSS of the process tree of `dropsync plan --json` on 100,000 files
`--scale` multiplies sizes and counts (0.1 for a quick check); the 1-file lines do not scale.
Writes <out>.json and <out>.md (a table to paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import BIN_DROP_SYNC_YML, DEFAULT_BENCH_DIR, KiB, MiB, build_master, filesystem_of, machine, remove_tree, tree_bytes  # noqa: E402
from benchmarks.tree_rss import Measured, run_measured  # noqa: E402
from dropsync_dagster.core.archive.gpg import ARCHIVE_S2K  # noqa: E402

BIN = Path(sys.executable).parent
RECIPIENT = "bench@dropsync.invalid"


def keyring(work: Path) -> Path:
    """A throwaway keyring with one recipient key pair (no passphrase), made once per work folder."""
    home = work / "gnupg"
    if not home.exists():
        home.mkdir(mode=0o700)
        subprocess.run(["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "",
                        "--quick-gen-key", f"bench <{RECIPIENT}>", "future-default", "default", "never"],
                       check=True, capture_output=True)
    return home
GiB = 1024 * MiB
LINES = ("full", "copy_large", "copy_small", "fixed", "daemon", "memory_archive", "memory_plan")


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


class Bench:
    """The work folder, the scale and the keyring every line shares."""

    def __init__(self, work: Path, scale: float, pairs: int) -> None:
        self.work, self.scale, self.pairs = work, scale, pairs
        self.gnupg = keyring(work)

    def master(self, name: str, groups: list[tuple[str, int, int]]) -> Path:
        master = self.work / name
        build_master(master, groups)
        return master

    def large(self) -> Path:
        s = self.scale
        return self.master(f"large_{s}", [("big", 4, int(256 * MiB * s)), ("small", max(1, int(1000 * s)), 16 * KiB)])

    def ours(self, master: Path, encrypt: bool, dropsync: Path = BIN / "dropsync", home: str = "dagster_home") -> Measured:
        """`dropsync sync DROP --do-it --yes` on a fresh hard-linked copy of `master` (not timed);
        `dropsync` and its instance `home` may be another checkout's (benchmarks/drop_100k.py)."""
        trial = self.work / "ours"
        remove_tree(trial)
        root, repo, processed = trial / "drops", trial / "repo", trial / "processed"
        for folder in (root, repo, processed):
            folder.mkdir(parents=True)
        drop = root / "drop"
        subprocess.run(["cp", "-al", str(master), str(drop)], check=True)
        (drop / ".built").unlink()
        (drop / "sync.yml").write_text(BIN_DROP_SYNC_YML.format(repository=repo, processed=processed))
        (drop / ".ready").touch()  # every run checks readiness
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
        env |= {
            "DROPSYNC_DROP_ROOTS": f"bench={root}",
            "DROPSYNC_ALLOWED_ROOTS": f"{repo}{os.pathsep}{processed}",
            "DROPSYNC_STATE_DIR": str(self.work / "state"),
            "DAGSTER_HOME": str(self.work / home),
        }
        if encrypt:
            env |= {"GNUPGHOME": str(self.gnupg), "DROPSYNC_GPG_RECIPIENTS": RECIPIENT,
                    "DROPSYNC_ARCHIVE_DIR": str(trial / "archive"), "DROPSYNC_KEY_DIR": str(trial / "keys")}
        os.sync()
        result = run_measured([str(dropsync), "sync", str(drop), "--do-it", "--yes"], env)
        if result.returncode != 0:
            raise SystemExit(f"dropsync sync {drop} exited {result.returncode}: {result.stderr[-500:]}")
        if encrypt and not list((trial / "archive").glob("*.tar.gpg")):
            raise SystemExit(f"dropsync sync {drop} wrote no archive under {trial / 'archive'}")
        remove_tree(trial)
        return result

    def baseline(self, master: Path, encrypt: bool) -> Measured:
        """`cp -r` (+ key wrap + `tar | gpg`) + `sync`, in one bash."""
        trial = self.work / "baseline"
        remove_tree(trial)
        trial.mkdir()
        script = f"cp -r '{master}' '{trial}/copy'"
        if encrypt:
            passphrase = secrets.token_hex(32)  # as dropsync: 256 random bits, hex, through a descriptor
            gpg = f"gpg --batch --no-tty --homedir '{self.gnupg}'"
            script += (
                f" && printf %s {passphrase} | {gpg} --trust-model always --encrypt --recipient {RECIPIENT}"
                f" -o '{trial}/key.gpg'"
                f" && tar -cf - -C '{master}' . | {gpg} --symmetric --cipher-algo AES256 --compress-algo none"
                f" {' '.join(ARCHIVE_S2K)} --pinentry-mode loopback --passphrase-fd 3 --no-symkey-cache"
                f" -o '{trial}/archive.tar.gpg' 3< <(printf %s {passphrase})"
            )
        os.sync()
        result = run_measured(["bash", "-c", f"set -o pipefail; {script} && sync"], dict(os.environ))
        if result.returncode != 0:
            raise SystemExit(f"baseline exited {result.returncode}: {result.stderr[-500:]}")
        remove_tree(trial)
        return result


def paired(name: str, target: float, bench: Bench, master: Path, encrypt: bool) -> dict:
    """Alternate baseline and ours `pairs` times; every pair printed; the median ratio judged."""
    pairs = []
    for i in range(bench.pairs):
        base = bench.baseline(master, encrypt)
        mine = bench.ours(master, encrypt)
        pairs.append({"baseline_s": round(base.seconds, 3), "ours_s": round(mine.seconds, 3),
                      "ratio": round(mine.seconds / base.seconds, 3), "ours_peak_tree_rss_mib": round(mine.peak_mib),
                      "baseline_cpu_s": round(base.cpu_seconds, 2), "ours_cpu_s": round(mine.cpu_seconds, 2),
                      "load": load()})
        print(f"  {name} pair {i + 1}: baseline {base.seconds:.2f} s (CPU {base.cpu_seconds:.2f}), ours "
              f"{mine.seconds:.2f} s (CPU {mine.cpu_seconds:.2f}) = {mine.seconds / base.seconds:.2f}×, "
              f"ours peak tree RSS {mine.peak_mib:.0f} MiB, load {load()}",
              flush=True)
    ratio = statistics.median(p["ratio"] for p in pairs)
    return {"line": name, "bytes": tree_bytes(master), "target": f"≤ {target}×", "pairs": pairs,
            "baseline": f"{statistics.median(p['baseline_s'] for p in pairs):.2f} s",
            "measured": f"{statistics.median(p['ours_s'] for p in pairs):.2f} s",
            "ratio": round(ratio, 2), "verdict": "met" if ratio <= target else "missed",
            # CPU seconds of each side's whole process tree: steadier than wall time on a busy machine.
            "cpu_ratio": round(statistics.median(p["ours_cpu_s"] / max(p["baseline_cpu_s"], 1e-3) for p in pairs), 2)}


def absolute(name: str, target_s: float, trials: list[float], baseline: str = "—", cpu: list[float] | None = None) -> dict:
    median = statistics.median(trials)
    spent = f" (CPU {', '.join(f'{c:.2f}' for c in cpu)} s)" if cpu else ""
    print(f"  {name}: {', '.join(f'{t:.2f}' for t in trials)} s{spent}, load {load()}", flush=True)
    return {"line": name, "target": f"≤ {target_s} s", "trials_s": [round(t, 3) for t in trials],
            "cpu_s": [round(c, 2) for c in cpu or []],
            "baseline": baseline, "measured": f"{median:.2f} s", "ratio": None,
            "verdict": "met" if median <= target_s else "missed"}


def line_fixed(bench: Bench) -> dict:
    master = bench.master("one", [("one", 1, 16 * KiB)])
    runs = [bench.ours(master, False) for _ in range(max(3, bench.pairs))]
    return absolute("fixed: `dropsync sync` of a 1-file drop", 1.5, [r.seconds for r in runs],
                    cpu=[r.cpu_seconds for r in runs])


def line_daemon(bench: Bench) -> dict:
    from benchmarks.run_overhead import through_daemon  # needs Postgres; imported only for this line
    phases = through_daemon(bench.work / "daemon", max(3, bench.pairs))
    row = absolute("daemon: 1-file drop, ready → success", 3.0, phases["ready → success"])
    row["phases_median_s"] = {k: round(statistics.median(v), 3) for k, v in phases.items()}
    return row


def line_memory_archive(bench: Bench) -> dict:
    """write_archive (recipient wrap, tar → gpg, concurrent validation) of 4 GiB in a fresh process."""
    s = bench.scale
    master = bench.master(f"archive4g_{s}", [("big", 14, int(256 * MiB * s)), ("small", max(1, int(2048 * s)), 256 * KiB)])
    out = bench.work / "archive_out"
    remove_tree(out)
    (out / "archives").mkdir(parents=True)
    result = run_measured([sys.executable, "-m", "benchmarks.tree_rss", "archive", str(master), str(out),
                           str(bench.gnupg), RECIPIENT], dict(os.environ))
    if result.returncode != 0:
        raise SystemExit(f"archiving {master} failed: {result.stderr[-500:]}")
    remove_tree(out)
    size = tree_bytes(master)
    print(f"  memory_archive: {size / GiB:.2f} GiB in {result.seconds:.1f} s, peak tree RSS {result.peak_mib:.0f} MiB "
          f"(largest single process {result.max_single_mib:.0f} MiB), load {load()}", flush=True)
    return {"line": f"memory: archiving {size / GiB:.2f} GiB (whole process tree)", "target": "≤ 200 MiB",
            "baseline": "—", "measured": f"{result.peak_mib:.0f} MiB", "ratio": None, "seconds": result.seconds,
            "verdict": "met" if result.peak_mib <= 200 else "missed"}


def line_memory_plan(bench: Bench) -> dict:
    from benchmarks.plan import build as build_plan_drop
    count = max(1, int(100_000 * bench.scale))
    drop = build_plan_drop(bench.work / "plan", count)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")} | drop.env()
    result = run_measured([str(BIN / "dropsync"), "plan", str(drop.path), "--json"], env, stdout_to_null=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"dropsync plan failed ({result.returncode}): {result.stderr[-500:]}")
    print(f"  memory_plan: {count} files in {result.seconds:.1f} s, peak tree RSS {result.peak_mib:.0f} MiB, "
          f"load {load()}", flush=True)
    return {"line": f"memory: `dropsync plan --json` of {count:,} files (whole process tree)", "target": "≤ 1024 MiB",
            "baseline": "—", "measured": f"{result.peak_mib:.0f} MiB", "ratio": None, "seconds": result.seconds,
            "verdict": "met" if result.peak_mib <= 1024 else "missed"}


def markdown(report: dict) -> str:
    rows = [f"Measured {report['date']} UTC on {report['machine']}, {report['filesystem']}; scale {report['scale']}, "
            f"{report['pairs']} pairs; load average before {report['load_before']}, after {report['load_after']}.", "",
            "| target | baseline | measured | ratio | verdict | CPU ratio |", "|---|---|---|---|---|---|"]
    for r in report["lines"]:
        ratio = f"{r['ratio']:.2f}×" if r.get("ratio") is not None else "—"
        cpu = f"{r['cpu_ratio']:.2f}×" if r.get("cpu_ratio") is not None else "—"
        name = r["line"].replace("|", "\\|")  # `tar | gpg` inside a table cell
        rows.append(f"| {name}: {r['target']} | {r['baseline']} | {r['measured']} | {ratio} | {r['verdict']} | {cpu} |")
    rows.append("| verification that reads from disk rather than the page cache | — | none: copies and the "
                "archive are verified by re-reading through the page cache | — | n/a | — |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies sizes and counts (quick checks)")
    parser.add_argument("--only", default=",".join(LINES), help=f"comma-separated subset of {','.join(LINES)}")
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "targets")
    parser.add_argument("--out", type=Path, default=DEFAULT_BENCH_DIR / "targets-result", help="writes OUT.json, OUT.md")
    parser.add_argument("--keep", action="store_true", help="keep the data for another run")
    args = parser.parse_args()
    chosen = args.only.split(",")
    unknown = set(chosen) - set(LINES)
    if unknown:
        raise SystemExit(f"--only: unknown line {sorted(unknown)[0]} (one of {', '.join(LINES)})")
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, args.scale, max(3, args.pairs))
    report = {"date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}", "machine": machine(),
              "filesystem": filesystem_of(work), "scale": args.scale, "pairs": bench.pairs, "load_before": load(),
              "lines": []}
    print(f"# targets, {report['date']} UTC, {report['machine']}, {report['filesystem']}, load {report['load_before']}",
          flush=True)
    s = args.scale
    lines: dict[str, Callable[[], dict]] = {
        "full": lambda: paired("full pipeline with archive + validation vs cp -r + tar | gpg + sync", 1.3,
                               bench, bench.large(), True),
        "copy_large": lambda: paired(f"without archive, {4}×{int(256 * s)} MiB + {max(1, int(1000 * s))}×16 KiB "
                                     "vs cp -r + sync", 1.3, bench, bench.large(), False),
        "copy_small": lambda: paired(f"without archive, {int(10_000 * s):,}×16 KiB vs cp -r + sync", 3.0, bench,
                                     bench.master(f"small_{s}", [("small", max(1, int(10_000 * s)), 16 * KiB)]), False),
        "fixed": lambda: line_fixed(bench),
        "daemon": lambda: line_daemon(bench),
        "memory_archive": lambda: line_memory_archive(bench),
        "memory_plan": lambda: line_memory_plan(bench),
    }
    try:
        for name in LINES:
            if name in chosen:
                print(f"## {name}", flush=True)
                report["lines"].append(lines[name]())
    finally:
        report["load_after"] = load()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        args.out.with_suffix(".md").write_text(markdown(report))
        print("\n" + markdown(report))
        subprocess.run(["gpgconf", "--homedir", str(bench.gnupg), "--kill", "gpg-agent"], check=False)
        if not args.keep:
            remove_tree(work)


if __name__ == "__main__":
    main()
