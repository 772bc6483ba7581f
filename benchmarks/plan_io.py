"""Benchmark: the frozen plan of a 100,000-file drop on disk, old format against new.

The plan is made by the real planner for a four-file drop of the seed's `sync.yml` (no LabKey),
its entries repeated under new names up to `--files`: the entries are what a planned drop's are,
without creating 100,000 files. Measured, each in a fresh interpreter so nothing is cached:

- old: the plan as one indented JSON document (`manifest.json`, as before the IO manager), written
  and parsed with `Plan.model_validate_json`; the old steps parsed it once each (five per run);
- new: the plan frozen by core/plan/frozen.py (a header line and one entry per line), written,
  then read by five "steps" in one process, as the multiprocess and Celery executors' step
  processes or the in-process executor's run do: the parses counted (once per process).

Run from the repository root: `python -m benchmarks.plan_io [--files N]` (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dropsync_dagster.core.model import Plan  # noqa: E402
from dropsync_dagster.core.plan.frozen import write_plan  # noqa: E402
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config  # noqa: E402

STEPS_AFTER_THE_PLAN = 5

# A fresh interpreter: parse the old single JSON once, as each old step did.
_OLD = """
import sys, time
from pathlib import Path
from dropsync_dagster.core.model import Plan
start = time.perf_counter()
plan = Plan.model_validate_json(Path(sys.argv[1]).read_bytes())
print(time.perf_counter() - start, len(plan.entries))
"""

# A fresh interpreter (a run process): five steps take the plan; count the parses.
_NEW = """
import sys, time
from pathlib import Path
from dropsync_dagster.core.plan import frozen
state, drop, plan_id, steps = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
first = frozen.read_plan(state, drop, plan_id)
once = time.perf_counter() - start
for _ in range(steps - 1):
    assert frozen.read_plan(state, drop, plan_id) is first
print(once, time.perf_counter() - start, sum(frozen.PARSED_PLANS.parses.values()), len(first.entries))
"""


def synthetic_plan(scratch: Path, files: int) -> Plan:
    """The planner's plan of a small real drop, its entries repeated up to `files`."""
    drop = make_drop(scratch)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    for read in (1, 2, 3, 4):
        drop.add_file(fastq_relpath(read=read))
    plan = drop.plan()
    base = plan.entries
    return plan.model_copy(update={"entries": [
        base[i % len(base)].model_copy(update={"relpath": f"d{i // 1000:03d}/f{i:06d}.fastq.gz",
                                               "source": f"{plan.drop_path}/d{i // 1000:03d}/f{i:06d}.fastq.gz"})
        for i in range(files)]})


def fresh(code: str, *args: str) -> list[str]:
    """Run `code` in a new interpreter; its one line of output, split."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    files = parser.parse_args().files
    with tempfile.TemporaryDirectory(prefix="plan_io-") as tmp:
        scratch, state = Path(tmp), Path(tmp) / "state"
        plan = synthetic_plan(scratch, files)
        start = time.perf_counter()
        old = scratch / "manifest.json"
        old.write_text(plan.model_dump_json(indent=1))
        old_write = time.perf_counter() - start
        start = time.perf_counter()
        new = write_plan(state, plan)
        new_write = time.perf_counter() - start
        old_parse = float(fresh(_OLD, str(old))[0])
        once, five, parses, entries = fresh(_NEW, str(state), plan.drop, plan.plan_id, str(STEPS_AFTER_THE_PLAN))
        assert int(entries) == files
        report = {
            "files": files,
            "load_average": os.getloadavg()[0],
            "old_json_MiB": round(old.stat().st_size / 2**20, 1),
            "new_jsonl_MiB": round(new.stat().st_size / 2**20, 1),
            "old_write_s": round(old_write, 2),
            "new_write_s": round(new_write, 2),
            "old_parse_s": round(old_parse, 2),
            "old_parses_per_run": STEPS_AFTER_THE_PLAN,
            "old_parse_s_per_run": round(old_parse * STEPS_AFTER_THE_PLAN, 2),
            "new_parse_s": round(float(once), 2),
            "new_five_steps_s": round(float(five), 2),
            "new_parses_per_run_process": int(parses),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
