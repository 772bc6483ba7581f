"""Benchmark: the status stores (SQLite file, CouchDB API on PouchDB Server in memory).

Per store: bulk registration of `--drops` drop documents; claim → extend_lease → mark_synced
latency (p50/p95) over `--cycles` drops, one process; claims/s with `--procs` processes claiming
distinct drops at once; bulk upsert of `--files` file documents for one drop (insert, then a
merge of repository fields); find_file latency. PouchDB Server is a single-threaded Node
process, not CouchDB: its numbers show our client's overhead and a floor, not a cluster.
Run from the repository root: `python -m benchmarks.status [--out FILE]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import filesystem_of, machine  # noqa: E402
from dropsync_dagster.core.status.store import StatusStore  # noqa: E402
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore  # noqa: E402
from dropsync_dagster.core.status.files import FileDoc  # noqa: E402
from dropsync_dagster.core.status.sqlite import SqliteStatusStore  # noqa: E402
from dropsync_dagster_tests.fixtures.couchdb import running_pouchdb  # noqa: E402

Spec = dict[str, str]
DROP = "bench-files"


def open_store(spec: Spec) -> StatusStore:
    """A store from a picklable description (the parallel claimants open their own)."""
    if spec["kind"] == "sqlite":
        return SqliteStatusStore(spec["path"])
    return CouchDBStatusStore(spec["url"], spec["db"], spec["user"], spec["password"])


def pct(samples: list[float], q: float) -> float:
    """The q-quantile of `samples`, in milliseconds."""
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q * 100) - 1] * 1000


def timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds taken by fn(*args)."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def claim_range(spec: Spec, first: int, count: int, start: multiprocessing.synchronize.Barrier) -> None:
    """One parallel claimant: claim its own drops (no contention, measures raw write rate)."""
    store = open_store(spec)
    store.get(f"drop-{first:05d}")  # connect before the clock starts
    start.wait()
    for i in range(first, first + count):
        store.claim(f"drop-{i:05d}", f"run-{first}", f"bench:{first}", 600)


def bench(spec: Spec, drops: int, cycles: int, procs: int, files: int) -> dict[str, str]:
    """All measurements for one store, formatted for the report."""
    store = open_store(spec)
    out: dict[str, str] = {}
    seconds = timed(store.register_many, {f"drop-{i:05d}": f"/drops/{i}" for i in range(drops)})
    out["register_many"] = f"{drops:,} in {seconds:.2f} s = {drops / seconds:,.0f} docs/s"

    lat: dict[str, list[float]] = {"claim": [], "extend_lease": [], "mark_synced": []}
    for i in range(cycles):
        drop = f"drop-{i:05d}"
        lat["claim"].append(timed(store.claim, drop, "run-1", "bench:1", 600))
        lat["extend_lease"].append(timed(store.extend_lease, drop, "run-1", 600))
        lat["mark_synced"].append(timed(store.mark_synced, drop, "run-1", {"go": 1}))
    for op, samples in lat.items():
        out[op] = (
            f"p50 {pct(samples, 0.5):.2f} ms, p95 {pct(samples, 0.95):.2f} ms, {len(samples) / sum(samples):,.0f}/s"
        )

    per = (drops - cycles) // procs
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(procs + 1)
    workers = [
        ctx.Process(target=claim_range, args=(spec, cycles + k * per, per, start)) for k in range(procs)
    ]
    for w in workers:
        w.start()
    start.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    if any(w.exitcode != 0 for w in workers):
        raise SystemExit(f"a parallel claimant failed on {spec['kind']}")
    out[f"claims, {procs} processes"] = f"{per * procs:,} in {wall:.2f} s = {per * procs / wall:,.0f}/s"

    docs = [
        FileDoc(
            relpath=f"lane{i % 8}/sample_{i:06d}.fastq.gz",
            source=f"/drops/{DROP}/lane{i % 8}/sample_{i:06d}.fastq.gz",
            size=i,
            checksums={"source": {"blake3": f"{i:064x}"}},
        )
        for i in range(files)
    ]
    seconds = timed(store.put_files, DROP, docs)
    out["put_files insert"] = f"{files:,} in {seconds:.2f} s = {files / seconds:,.0f} docs/s"
    merges = [
        FileDoc(
            relpath=d.relpath,
            target=f"/repo/P1/{d.relpath}",
            checksums={"repository": {"blake3": f"{i:064x}"}},
        )
        for i, d in enumerate(docs)
    ]
    seconds = timed(store.put_files, DROP, merges)
    out["put_files merge"] = f"{files:,} in {seconds:.2f} s = {files / seconds:,.0f} docs/s"

    probe = [docs[i * (files // 50)] for i in range(50)]
    first = timed(store.find_file, probe[0].source or "")
    finds = [timed(store.find_file, f"/repo/P1/{d.relpath}") for d in probe]
    out["find_file"] = (
        f"first query {first * 1000:.0f} ms (PouchDB builds its indexes then), then p50 {pct(finds, 0.5):.2f} ms, p95 {pct(finds, 0.95):.2f} ms"
    )
    return out


@contextmanager
def store_specs(kinds: list[str]) -> Iterator[list[Spec]]:
    """Fresh storage for each store kind, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        specs = [{"kind": "sqlite", "path": str(Path(tmp) / "status.sqlite3")}] if "sqlite" in kinds else []
        if "couchdb" not in kinds:
            yield specs
            return
        with running_pouchdb(Path(tmp)) as server:
            yield [
                *specs,
                {
                    "kind": "couchdb",
                    "url": server.url,
                    "db": "bench",
                    "user": server.user,
                    "password": server.password,
                },
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--stores", default="sqlite,couchdb")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        f"# Status store benchmark, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {machine()}; SQLite file on {filesystem_of(Path(tempfile.gettempdir()))}; "
        f"PouchDB Server 4.2.0 in memory (Node {_node_version()}); load average at start "
        f"{os.getloadavg()[0]:.1f} (other work shares the machine).",
        "",
    ]
    with store_specs(args.stores.split(",")) as specs:
        for spec in specs:
            results = bench(spec, args.drops, args.cycles, args.procs, args.files)
            lines += [f"## {spec['kind']}", "", "| measure | result |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in results.items()] + [""]
            print("\n".join(lines[-len(results) - 5 :]), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


def _node_version() -> str:
    return (
        subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        or "?"
    )


if __name__ == "__main__":
    main()
