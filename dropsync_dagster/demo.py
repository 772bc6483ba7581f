"""`dropsync demo` / `make demo`: build a realistic drop, sync it through Dagster, verify the result.

The demo lives in `./.demo` and runs on the same instance as `make dev` (DAGSTER_HOME), so its
runs show in the UI. One file carries a wrong `.md5` sidecar on purpose: it must stay in the
drop. Running the demo again syncs nothing new and verifies the same outcome.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from dropsync_dagster.core.integrity import hash_file

DROP_NAME = "run_2026-11-20_NovaSeq"
LIBS = ("ABC_DEFGHI", "XYZ_QRSTUV")
HELD_BACK = "scRNA/btki/2026-11-20/SEQ_ABCDE/XYZ_QRSTUV_S2_L001_R2_001.fastq.gz"
SYNC_YML = {
    "drop_filename_filter": "**/*.fastq.gz",
    "drop_filename_regex": (
        r"[^\/]+\/(?P<phase>[^\/]+)\/.*(?P<seq>SEQ_[A-Z]{5}).*"
        r"(?P<prefix>(?P<lib>[A-Z]{3}_[A-Z]{6})_[A-Z][0-9]+_[A-Z][0-9]{3})_(?P<suffix>[^.]+)"
    ),
    "repository_folder": "../../repository",
    "repository_filename": "scRNA/raw/<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz",
    "processed_folder": "../../processed",
    "filename_sequence": "run",
}


def demo_env(base: Path) -> dict[str, str]:
    """The deployment settings of the demo."""
    return {
        "DROPSYNC_DROP_ROOTS": f"demo={base / 'drops'}",
        "DROPSYNC_ALLOWED_ROOTS": os.pathsep.join([str(base / "repository"), str(base / "processed")]),
        "DROPSYNC_STATE_DIR": str(base / "state"),
    }


def build(base: Path) -> Path:
    """Create the demo drop once: gzipped FASTQ reads named as in the seed README, some `.md5`s."""
    drop = base / "drops" / DROP_NAME
    if drop.exists():
        return drop
    for folder in ("repository", "processed"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for sample, lib in enumerate(LIBS, start=1):
        for read in (1, 2):
            rel = f"scRNA/btki/2026-11-20/SEQ_ABCDE/{lib}_S{sample}_L001_R{read}_001.fastq.gz"
            data = _fastq(rel, reads=2000)
            path = drop / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if sample == 1 or rel == HELD_BACK:
                digest = hashlib.md5(data if rel != HELD_BACK else b"corrupted in transfer").hexdigest()
                Path(f"{path}.md5").write_text(f"{digest}  {path.name}\n")
    (drop / "SampleSheet.csv").write_text("Sample_ID,Index\nS1,ACGTACGT\nS2,TGCATGCA\n")
    (drop / "sync.yml").write_text(yaml.safe_dump(SYNC_YML, sort_keys=False))
    (drop / ".ready").touch()
    return drop


def _fastq(name: str, reads: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    lines = []
    for i in range(reads):
        bases = "".join("ACGT"[(seed[(i + j) % 32] >> (j % 4)) & 3] for j in range(76))
        lines.append(f"@{name}:{i}\n{bases}\n+\n{'I' * 76}\n")
    return gzip.compress("".join(lines).encode(), mtime=0)


def verify(base: Path, drop: Path) -> list[str]:
    """What differs from the designed outcome (empty: the demo behaved)."""
    problems = []
    repo = base / "repository"
    for sidecar in repo.rglob("*.md5"):
        if subprocess.run(["md5sum", "--quiet", "-c", sidecar.name], cwd=sidecar.parent).returncode != 0:
            problems.append(f"md5sum -c failed for {sidecar}")
    for sidecar in repo.rglob("*.blake3"):
        digest, _, name = sidecar.read_text().rstrip("\n").partition("  ")
        if hash_file(sidecar.parent / name, False).blake3 != digest:
            problems.append(f"b3sum -c would fail for {sidecar}")
    copies = sorted(p for p in repo.rglob("*.fastq.gz"))
    if len(copies) != 3:
        problems.append(f"expected 3 files in the repository, found {len(copies)}")
    if not (drop / HELD_BACK).exists():
        problems.append(f"{HELD_BACK} (wrong .md5) should have been held back in the drop")
    moved = sorted(p.relative_to(base / "processed").as_posix() for p in (base / "processed").rglob("*.fastq.gz"))
    if len(moved) != 3 or HELD_BACK in moved:
        problems.append(f"expected the 3 good originals in processed/, found {moved}")
    return problems


def main() -> int:
    """Build (once), sync, verify, summarise. Exit 0 when everything is as designed."""
    base = Path(os.path.abspath(".demo"))
    drop = build(base)
    env = {**os.environ, **demo_env(base)}
    env.setdefault("DAGSTER_HOME", os.path.abspath(".dagster_home"))
    cmd = [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop), "--do-it", "--yes"]
    print(f"$ dropsync sync {drop} --do-it --yes", flush=True)
    done = subprocess.run(cmd, env=env)
    if done.returncode != 1:
        print(f"demo: expected exit 1 (one file held back on purpose), got {done.returncode}", file=sys.stderr)
        return 1
    problems = verify(base, drop)
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        "\ndemo OK: 3 files in .demo/repository (sidecars pass md5sum -c / b3sum -c), "
        f"the wrong-.md5 file held back in the drop, 3 originals in .demo/processed.\n"
        f"See the runs in the UI: make dev (DAGSTER_HOME={env['DAGSTER_HOME']})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
