"""End-to-end ingest: `dropsync sync --do-it --yes` against `cp -r` + `sync` on the same data.

Pairs alternate in one run (ours, baseline, ours, baseline, ...) and the median ratio is printed.
Each of our trials gets a fresh drop made of hard links to the same data (set-up, not timed),
a fresh repository and processed folder. Also measures what Dagster's start-up costs: the time
to import the definitions, and a 1-file drop end to end.

    .venv/bin/python benchmarks/ingest.py [--pairs 3] [--scale 1.0] [--only large|small] [--encrypt]

With --encrypt the drops are also archived (tar → gpg, validated) and the baseline adds
`tar -cf - DROP | gpg --symmetric --cipher-algo AES256 --compress-algo none`.
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
from datasets import BIN_DROP_SYNC_YML, DEFAULT_BENCH_DIR, KiB, MiB, build_master, machine, remove_tree, tree_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def timed(cmd: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{cmd[:4]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def ours(work: Path, master: Path, trial: int, encrypt: bool = False) -> float:
    """One dropsync trial on a hard-linked copy of the master drop (archived too with `encrypt`)."""
    root = work / f"drops{trial}"
    drop, repo, processed = root / "drop", work / f"repo{trial}", work / f"processed{trial}"
    for folder in (root, repo, processed):
        remove_tree(folder)
    root.mkdir(parents=True)
    repo.mkdir()
    processed.mkdir()
    subprocess.run(["cp", "-al", str(master), str(drop)], check=True)
    (drop / ".built").unlink()
    (drop / "sync.yml").write_text(BIN_DROP_SYNC_YML.format(repository=repo, processed=processed))
    (drop / ".ready").touch()  # every run checks readiness: without it the run is refused
    env = {
        **os.environ,
        "DROPSYNC_DROP_ROOTS": f"bench={root}",
        "DROPSYNC_ALLOWED_ROOTS": f"{repo}{os.pathsep}{processed}",
        "DROPSYNC_STATE_DIR": str(work / "state"),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    if encrypt:
        env.update({
            "GNUPGHOME": str(keyring(work)),
            "DROPSYNC_GPG_RECIPIENTS": RECIPIENT,
            "DROPSYNC_ARCHIVE_DIR": str(work / f"archive{trial}"),
            "DROPSYNC_KEY_DIR": str(work / f"keys{trial}"),
        })
    os.sync()
    elapsed = timed([PYTHON, "-m", "dropsync_dagster.cli", "sync", str(drop), "--do-it", "--yes"], env)
    for folder in (root, repo, processed, work / f"archive{trial}", work / f"keys{trial}"):
        remove_tree(folder)
    return elapsed


def baseline(work: Path, master: Path, encrypt: bool = False) -> float:
    """`cp -r` then `sync` (plus `tar | gpg` with `encrypt`): the floor we are measured against."""
    target, archive = work / "cp_target", work / "baseline.tar.gpg"
    remove_tree(target)
    archive.unlink(missing_ok=True)
    os.sync()
    script = f"cp -r '{master}' '{target}'"
    if encrypt:
        script += (
            f" && tar -cf - -C '{master}' . | gpg --homedir '{keyring(work)}' --batch --yes --pinentry-mode loopback"
            f" --passphrase-fd 3 --symmetric --cipher-algo AES256 --compress-algo none -o '{archive}'"
            f" 3< <(printf %s {'ab' * 32})"
        )
    elapsed = timed(["bash", "-c", script + " && sync"])
    remove_tree(target)
    archive.unlink(missing_ok=True)
    return elapsed


RECIPIENT = "bench@dropsync.invalid"


def keyring(work: Path) -> Path:
    """A throwaway keyring with one recipient, made once per benchmark folder."""
    home = work / "gnupg"
    if not home.exists():
        home.mkdir(mode=0o700)
        subprocess.run(
            ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "",
             "--quick-gen-key", f"bench <{RECIPIENT}>", "future-default", "default", "never"],
            check=True, capture_output=True,
        )
    return home


def compare(name: str, work: Path, master: Path, pairs: int, encrypt: bool = False) -> dict:
    mine, base = [], []
    for trial in range(pairs):
        # Alternate who goes first, so neither always inherits a warm or a dirty cache.
        if trial % 2 == 0:
            mine.append(ours(work, master, trial, encrypt))
            base.append(baseline(work, master, encrypt))
        else:
            base.append(baseline(work, master, encrypt))
            mine.append(ours(work, master, trial, encrypt))
    ratios = [m / b for m, b in zip(mine, base)]
    size = tree_bytes(master)
    row = {
        "drop": name + (" (+ encrypted archive vs + tar | gpg)" if encrypt else ""),
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
    build_master(master, [("one", 1, 16 * KiB)])
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
    parser.add_argument("--encrypt", action="store_true", help="archive with gpg too; baseline adds tar | gpg")
    args = parser.parse_args()
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d')} {machine()}", flush=True)
    s = args.scale
    if args.only in (None, "large"):
        master = work / "master_large"
        build_master(master, [("big", 4, int(512 * MiB * s)), ("small", int(2000 * s), 16 * KiB)])
        compare("4 x 512 MiB + 2,000 x 16 KiB", work, master, args.pairs, args.encrypt)
    if args.only in (None, "small"):
        master = work / "master_small"
        build_master(master, [("small", int(10_000 * s), 16 * KiB)])
        compare("10,000 x 16 KiB", work, master, args.pairs, args.encrypt)
    startup(work)
    if not args.keep:
        remove_tree(work)


if __name__ == "__main__":
    main()
