"""Benchmark: the drop sensor's tick with 10,000 synced drops under the root (target: <= 2 s).

The synced drops are what a sync leaves behind: `sync.yml`, `.ready` and the nested folders
whose files were moved to the processed folder. Timed: the registering first tick, steady ticks
(nothing changed), a tick with one new ready drop, and a tick after a file arrives deep inside
one synced drop, each as `core.watch.tick` and as the Dagster sensor (`drop_sensor.evaluate_tick`
with the SQLite status store, as the daemon runs it). Also the cursor's and the index's size.

    .venv/bin/python -m benchmarks.sensor [--drops 10000] [--repeat 5] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from benchmarks.datasets import DEFAULT_BENCH_DIR, filesystem_of, machine, remove_tree  # noqa: E402
from dropsync_dagster.deployment import settings_from_env  # noqa: E402
from dropsync_dagster.core.drops.watch import tick  # noqa: E402
from dropsync_dagster.definitions import defs  # noqa: E402
from dropsync_dagster.resources.status import SqliteStatusResource  # noqa: E402
from dropsync_dagster.resources.storage import StorageResource  # noqa: E402
from dropsync_dagster.sensors import drop_sensor  # noqa: E402

NESTED = "scRNA/btki/2026-11-20/SEQ_ABCDE"
SYNC_YML = """drop_filename_filter: "**/*.fastq.gz"
drop_filename_regex: "(?P<name>.+)"
repository_folder: {base}/repository
repository_filename: "<name>"
processed_folder: {base}/processed
"""


def build(base: Path, count: int) -> Path:
    """`count` synced drops under `base/drops` (reused when already built)."""
    root = base / "drops"
    marker = base / f".built-{count}"
    if not marker.exists():
        remove_tree(base)
        for i in range(count):
            drop = root / f"run_{i:05d}"
            (drop / NESTED).mkdir(parents=True)
            (drop / "sync.yml").write_text(SYNC_YML.format(base=base))
            (drop / ".ready").touch()
        marker.touch()
    return root


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


class SensorTicker:
    """drop_sensor evaluated as the daemon does, carrying the cursor and adding partitions."""

    def __init__(self, instance: dg.DagsterInstance, env: dict[str, str]) -> None:
        self.instance, self.cursor = instance, None
        self.resources = {"storage": StorageResource.of(settings_from_env(env)), "status": SqliteStatusResource()}
        self.defs = dg.Definitions(assets=list(defs.assets or []), jobs=list(defs.jobs or []),
                                   sensors=[drop_sensor], resources={**(defs.resources or {}), **self.resources})

    def __call__(self) -> dg.SensorExecutionData:
        ctx = dg.build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(),
                                      cursor=self.cursor, definitions=self.defs, resources=self.resources)
        data = drop_sensor.evaluate_tick(ctx)
        self.cursor = data.cursor
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return data


def main() -> None:
    """Build or reuse the drops; time the ticks; print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=DEFAULT_BENCH_DIR / "sensor")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    base = args.dir.resolve()
    root = build(base, args.drops)
    print(f"# sensor benchmark, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
          f"{filesystem_of(base)}; {args.drops} synced drops; load average {os.getloadavg()[0]:.1f}\n")
    print("| tick | core.watch.tick s | drop_sensor s |\n|---|---|---|")
    rows: dict[str, list[list[float]]] = {}
    try:
        for side in ("core", "sensor"):
            state = base / f"state-{side}"
            remove_tree(state)
            env = {"DROPSYNC_DROP_ROOTS": f"seq={root}", "DROPSYNC_STATE_DIR": str(state)}
            settings = settings_from_env(env)
            with dg.instance_for_test() as instance:
                if side == "core":
                    cursor: dict | None = None

                    def run() -> object:
                        nonlocal cursor
                        plan = tick(settings, cursor)
                        cursor = plan.cursor
                        return plan
                else:
                    run = SensorTicker(instance, env)
                rows.setdefault("first tick (registers all, runs none)", []).append([timed(run)[0]])
                rows.setdefault("steady tick (nothing changed)", []).append([timed(run)[0] for _ in range(args.repeat)])
                new = root / f"zz_new_{side}"
                (new / NESTED).mkdir(parents=True)
                (new / "sync.yml").write_text(SYNC_YML.format(base=base))
                for r in (1, 2):
                    (new / NESTED / f"x_R{r}.fastq.gz").write_bytes(b"x")
                (new / ".ready").touch()
                rows.setdefault("one new ready drop", []).append([timed(run)[0]])
                (root / "run_00042" / NESTED / f"late_{side}.fastq.gz").write_bytes(b"late")
                rows.setdefault("a file arrives in one synced drop", []).append([timed(run)[0]])
                cursor_text = json.dumps(cursor) if side == "core" else run.cursor
                index = max((state / "sensor").glob("watch-*.json"), key=lambda p: p.stat().st_mtime)
                print(f"<!-- {side}: cursor {len(cursor_text)} bytes, index {index.stat().st_size / 1024:.0f} KiB -->")
                remove_tree(new)
                (root / "run_00042" / NESTED / f"late_{side}.fastq.gz").unlink()
        for label, (core, sensor) in rows.items():
            print(f"| {label} | {statistics.median(core):.2f} | {statistics.median(sensor):.2f} |")
        worst = max(max(v) for label, sides in rows.items() if not label.startswith("first") for v in sides)
        print(f"\n<!-- worst non-registering tick {worst:.2f} s: {'OK' if worst <= 2 else 'OVER TARGET'} (target 2 s) -->")
    finally:
        if not args.keep:
            remove_tree(base)


if __name__ == "__main__":
    main()
