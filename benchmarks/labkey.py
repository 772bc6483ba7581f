"""LabKey cost in the drop job: a drop of N tiny files synced with the presence check and write-back
against the LabKey test server, timed against the same drop without LabKey, in one run.

The test server runs in its own process (so it does not share the job's GIL) and counts every
request it receives. Half of the files already have a row (updates), half get new rows (inserts).
Pairs alternate (without, with, without, with ...); each trial gets a fresh drop, repository,
state folder and Dagster instance. Targets (issue 5): LabKey adds <= 25 % wall time and
<= 1 request per 200 files.

    .venv/bin/python benchmarks/labkey.py [--files 10000] [--pairs 2] [--crowd 0] [--out /tmp/bench_labkey.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# This file's own folder goes last: first, it would shadow the `labkey` client package.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != HERE), str(HERE)]

import dagster as dg  # noqa: E402
from datasets import DEFAULT_BENCH_DIR, machine, remove_tree  # noqa: E402

from dropsync_dagster.resources.labkey import LabKeyResource  # noqa: E402
from dropsync_dagster_tests.support.dagster_env import run_job  # noqa: E402
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config  # noqa: E402
from dropsync_dagster_tests.fixtures.labkey import (  # noqa: E402
    EXP_DATA_COLUMNS,
    LABKEY_API_KEY,
    LABKEY_CONTAINER,
    LABKEY_CONTEXT,
    start_labkey_server,
)

COUNTED = ("whoami", "selectRows", "insertRows", "updateRows", "deleteRows")


def serve(conn: Any) -> None:
    """Child process: a LabKey test server with exp.data; answers (command, arg) over `conn`."""
    server = start_labkey_server()
    server.create_table(LABKEY_CONTAINER, "exp", "data", EXP_DATA_COLUMNS)
    conn.send(server.domain)
    while True:
        command, arg = conn.recv()
        if command == "stop":
            server.stop()
            conn.send(None)
            return
        if command == "seed":
            server.insert(LABKEY_CONTAINER, "exp", "data", arg)
            conn.send(None)
        elif command == "reset":
            server.reset_counters()
            conn.send(None)
        elif command == "counts":
            conn.send({a: server.count(a) for a in COUNTED} | {"rows": len(server.rows(LABKEY_CONTAINER, "exp", "data"))})


class ServerProcess:
    """The test server in a child process."""

    def __init__(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("fork").Process(target=serve, args=(child,), daemon=True)
        self.proc.start()
        self.domain = self.conn.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()


def library(i: int) -> str:
    """A distinct `[A-Z]{3}_[A-Z]{6}` library name per file."""
    letters = ""
    for _ in range(6):
        i, r = divmod(i, 26)
        letters = chr(65 + r) + letters
    return f"ABC_{letters}"


def build(base: Path, files: int, section: dict[str, Any] | None) -> Drop:
    """A fresh drop of `files` tiny FASTQ-like files; the seed config, with or without LabKey."""
    remove_tree(base)
    drop = make_drop(base)
    if section is None:
        drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    else:
        drop.write_config(seed_config(drop.repository, drop.processed, labkey=section))
    for i in range(files):
        drop.add_file(fastq_relpath(lib=library(i)))
    drop.mark_ready()
    return drop


def target(drop: Drop, i: int) -> str:
    lib = library(i)
    return str(drop.repository / f"scRNA/raw/btki/{lib}/{lib}_SEQ_ABCDE_r1__R1_001.fastq.gz")


def step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds per step, from the run's STEP_SUCCESS/STEP_FAILURE events."""
    out = {}
    for event in result.all_events:
        if event.is_step_success:
            out[event.step_key] = event.event_specific_data.duration_ms / 1000
    return out


def trial(kind: str, base: Path, files: int, server: ServerProcess, section: dict[str, Any],
          crowd: int = 0) -> dict[str, Any]:
    """One timed job run; with LabKey, half the files already have a row, and `crowd` rows of other
    files sit in the same repository folder (earlier drops)."""
    drop = build(base, files, section if kind == "labkey" else None)
    if kind == "labkey":
        server.ask("seed", [{"Name": "existing", "Path_To_Synced_Data": target(drop, i)} for i in range(0, files, 2)])
        others = drop.repository / "scRNA/raw/btki/ABC_EARLIER"
        server.ask("seed", [{"Name": "earlier", "Path_To_Synced_Data": f"{others}/{i}.fastq.gz"} for i in range(crowd)])
    server.ask("reset")
    resource = LabKeyResource(api_key=LABKEY_API_KEY)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = run_job(drop, instance, labkey=resource)
        elapsed = time.perf_counter() - started
        if not result.success:
            raise SystemExit(f"{kind} run failed")
        steps = step_seconds(result)
    counts = server.ask("counts")
    moved = sum(1 for _ in (drop.processed).rglob("*.fastq.gz"))
    if moved != files:
        raise SystemExit(f"{kind}: {moved} of {files} originals moved")
    return {"kind": kind, "seconds": elapsed, "steps": steps, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_labkey.md"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "labkey")
    parser.add_argument("--crowd", type=int, default=0,
                        help="rows of earlier files in the same repository folder (more than fit in the "
                             "batches' pages makes the presence check send the batches)")
    args = parser.parse_args()
    empty_netrc = args.dir.parent / "labkey-empty-netrc"  # a developer's ~/.netrc stays out of it
    empty_netrc.parent.mkdir(parents=True, exist_ok=True)
    empty_netrc.write_text("")
    os.environ["NETRC"] = str(empty_netrc)
    server = ServerProcess()
    section = {"host": server.domain, "container": LABKEY_CONTAINER, "context": LABKEY_CONTEXT,
               "use_ssl": False, "schema": "exp", "table": "data"}
    trials = []
    try:
        for pair in range(args.pairs):
            for kind in ("plain", "labkey"):
                run = trial(kind, args.dir / f"{kind}{pair}", args.files, server, section, args.crowd)
                trials.append(run)
                print(f"pair {pair + 1} {kind:6} {run['seconds']:7.2f} s  requests {run['counts']}", flush=True)
    finally:
        server.ask("stop")
        remove_tree(args.dir)
    report(args, trials)


def _added(plain: dict[str, Any], labkey: dict[str, Any]) -> float:
    """Seconds LabKey adds: planning with the presence check, plus the write-back step."""
    return (labkey["steps"]["drop_manifest"] - plain["steps"]["drop_manifest"]) + labkey["steps"]["labkey_records"]


def report(args: argparse.Namespace, trials: list[dict[str, Any]]) -> None:
    """Print and write the markdown summary."""
    plain = [t for t in trials if t["kind"] == "plain"]
    labkey = [t for t in trials if t["kind"] == "labkey"]
    ratios = [lk["seconds"] / p["seconds"] for lk, p in zip(labkey, plain)]
    # The steps LabKey adds to or lengthens, against the whole job without LabKey: robust to noise in
    # the copy/move steps, which are the same work in both runs.
    added = [_added(p, lk) / p["seconds"] for p, lk in zip(plain, labkey)]
    counts = labkey[-1]["counts"]
    requests = sum(counts[a] for a in COUNTED)
    steps = labkey[-1]["steps"]
    plain_steps = plain[-1]["steps"]
    lines = [
        f"# LabKey benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end. `benchmarks/labkey.py --files "
        f"{args.files} --pairs {args.pairs} --crowd {args.crowd}`: the sync_drop job in-process (SQLite instance,",
        "archives off), LabKey test server in its own process; with LabKey half the files already have a row",
        f"(updates), half are inserted, and {args.crowd} rows of earlier files share their repository folder.",
        "Presence: default `file_list` CONTAINS.",
        "",
        "| pair | without LabKey (s) | with LabKey (s) | whole-job overhead | LabKey steps' added time |",
        "|---|---|---|---|---|",
        *[f"| {i + 1} | {p['seconds']:.2f} | {lk['seconds']:.2f} | {lk['seconds'] / p['seconds'] - 1:+.1%} | "
          f"{_added(p, lk):.2f} s = {a:+.1%} |" for i, (p, lk, a) in enumerate(zip(plain, labkey, added))],
        "",
        f"Median whole-job overhead: **{statistics.median(ratios) - 1:+.1%}**; median added time of the LabKey steps "
        f"(drop_manifest's increase + labkey_records): **{statistics.median(added):+.1%}** (target <= +25 %).",
        "",
        f"Requests with LabKey (last trial): {', '.join(f'{a} {counts[a]}' for a in COUNTED)} = **{requests}** "
        f"for {args.files} files = 1 per {args.files / max(requests, 1):.0f} files (target: <= 1 per 200). "
        f"Table rows after: {counts['rows']}.",
        "",
        "Step seconds (last pair, without -> with): "
        + ", ".join(f"{k} {plain_steps.get(k, 0):.2f} -> {v:.2f}" for k, v in steps.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
