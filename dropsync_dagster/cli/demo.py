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

import click
import yaml

from dropsync_dagster.core.integrity.hashing import hash_file
from dropsync_dagster.deployment import deployment_from_env

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
    "processed_rebase_from": "..",  # originals land in processed/<drop>/…: drops never collide there
    "filename_sequence": "run",
}


DEMO_RECIPIENT = "dropsync-demo@example.invalid"


def demo_env(base: Path) -> dict[str, str]:
    """The deployment settings of the demo, with its own throwaway keyring."""
    return {
        "DROPSYNC_DROP_ROOTS": f"demo={base / 'drops'}",
        "DROPSYNC_ALLOWED_ROOTS": os.pathsep.join([str(base / "repository"), str(base / "processed")]),
        "DROPSYNC_STATE_DIR": str(base / "state"),
        "GNUPGHOME": str(base / "gnupg"),
        "DROPSYNC_GPG_RECIPIENTS": DEMO_RECIPIENT,
        "DROPSYNC_ARCHIVE_DIR": str(base / "archive"),
        "DROPSYNC_KEY_DIR": str(base / "keys"),
    }


ENV_FILE_HEADER = """\
# Deployment settings of this project folder. `dagster dev` (make dev), `dagster-webserver` and
# `dagster-daemon` load this file into the code location's environment; variables set here win
# over the shell's. Written by `dropsync demo` for the demo: point the DROPSYNC_* values at real
# folders to watch real drops (README, Deployment settings). Kept out of git (.gitignore).
"""


def write_env_file(path: Path, env: dict[str, str]) -> bool:
    """Write `env` as a dotenv file unless one exists (it is the user's then); True when written."""
    if path.exists():
        return False
    lines = [f'{k}="{_dotenv_quoted(v)}"' for k, v in env.items()]
    path.write_text(ENV_FILE_HEADER + "\n".join(lines) + "\n")
    return True


def _dotenv_quoted(value: str) -> str:
    """A value for double quotes in a dotenv file (python-dotenv unescapes \\ and \\")."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def make_demo_key(home: Path) -> None:
    """A throwaway key pair without passphrase: the demo archive's owner."""
    if home.exists():
        return
    home.mkdir(parents=True, mode=0o700)
    subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", f"dropsync demo <{DEMO_RECIPIENT}>", "future-default", "default", "never"],
        check=True, capture_output=True,
    )


def build(base: Path, name: str = DROP_NAME) -> Path:
    """Create a demo drop once: gzipped FASTQ reads named as in the seed README, some `.md5`s."""
    drop = base / "drops" / name
    if drop.exists():
        return drop
    for folder in ("repository", "processed"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for rel in _fastq_names():
        data = _fastq(f"{name}/{rel}", reads=2000)  # every drop's reads are its own
        path = drop / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if LIBS[0] in rel or rel == HELD_BACK:  # the first library's reads come with .md5 sidecars
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
    processed = base / "processed" / drop.name
    moved = sorted(p.relative_to(processed).as_posix() for p in processed.rglob("*.fastq.gz"))
    if len(moved) != 3 or HELD_BACK in moved:
        problems.append(f"expected the 3 good originals in processed/, found {moved}")
    return problems + verify_archive(base, drop) + verify_status(base)


def verify_status(base: Path) -> list[str]:
    """The drop's status document is `synced` and every matched file has a lineage document."""
    store = deployment_from_env(demo_env(base)).status_store()
    key = f"demo-{DROP_NAME}"
    doc = store.get(key)
    if doc is None or doc.status != "synced":
        return [f"status document of {key}: {doc.status if doc else 'missing'}, expected synced"]
    files = [store.get_file(f"{key}:{rel}") for rel in _fastq_names()]
    missing = [rel for rel, f in zip(_fastq_names(), files) if f is None]
    return [f"no lineage document for {rel}" for rel in missing]


def _fastq_names() -> list[str]:
    return [
        f"scRNA/btki/2026-11-20/SEQ_ABCDE/{lib}_S{sample}_L001_R{read}_001.fastq.gz"
        for sample, lib in enumerate(LIBS, start=1)
        for read in (1, 2)
    ]


def verify_archive(base: Path, drop: Path) -> list[str]:
    """Restore generation 1 with nothing but gpg and tar; every member equals the original bytes."""
    key = base / "keys" / f"demo-{DROP_NAME}.g1.key.gpg"
    archive = base / "archive" / f"demo-{DROP_NAME}.g1.tar.gpg"
    gpg = ["gpg", "--batch", "--homedir", str(base / "gnupg")]
    passphrase = subprocess.run([*gpg, "--decrypt", str(key)], capture_output=True, check=True).stdout
    restored = base / "restored"
    shutil.rmtree(restored, ignore_errors=True)
    restored.mkdir()
    decrypt = subprocess.Popen(
        [*gpg, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt", str(archive)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    untar = subprocess.Popen(["tar", "-x", "-C", str(restored)], stdin=decrypt.stdout)
    decrypt.stdin.write(passphrase)
    decrypt.stdin.close()
    decrypt.stdout.close()
    if untar.wait() != 0 or decrypt.wait() != 0:
        return [f"gpg | tar could not restore {archive}"]
    problems = []
    for member in (p for p in restored.rglob("*") if p.is_file()):
        rel = member.relative_to(restored)
        original = drop / rel if (drop / rel).exists() else base / "processed" / drop.name / rel
        if not original.exists() or original.read_bytes() != member.read_bytes():
            problems.append(f"restored {rel} differs from the original")
    shutil.rmtree(restored)
    return problems


@click.command()
def demo() -> None:
    """Build a demo drop under ./.demo, sync it through Dagster and verify the outcome."""
    sys.exit(main())


def main() -> int:
    """Build (once), sync, verify, summarise. Exit 0 when everything is as designed."""
    base = Path(os.path.abspath(".demo"))
    make_demo_key(base / "gnupg")
    drop = build(base)
    if write_env_file(Path(".env"), demo_env(base)):
        print(f"wrote {Path('.env').resolve()}: the demo's settings, for make dev", flush=True)
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
        "the wrong-.md5 file held back in the drop, 3 originals in .demo/processed, and the drop "
        "as received in .demo/archive, restored byte for byte by gpg --decrypt | tar -x with the key "
        "wrapped to the demo recipient in .demo/keys; the drop's status document is synced with one "
        "lineage document per file (dropsync status / dropsync lineage PATH).\n"
        f"See the runs in the UI: make dev (DAGSTER_HOME={env['DAGSTER_HOME']}; settings from .env)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
