"""A drop synced through the real job with real gpg archives, and `dropsync` run against it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config


@dataclass(frozen=True)
class Synced:
    """A synced drop, where its archives and keys are, and the keyring that can open them."""

    drop: Drop
    archive_dir: Path
    key_dir: Path
    gnupghome: str
    recipients: str

    def gpg(self) -> GpgResource:
        """The job's gpg resource for this drop."""
        return GpgResource(gnupghome=self.gnupghome, recipients=self.recipients.split(","),
                           archive_dir=str(self.archive_dir), key_dir=str(self.key_dir))

    def env(self) -> dict[str, str | None]:
        """The CLI's environment: the drop's settings, its archive folders, the keyring."""
        return {**self.drop.env(), "DROPSYNC_ARCHIVE_DIR": str(self.archive_dir), "DROPSYNC_KEY_DIR": str(self.key_dir),
                "GNUPGHOME": self.gnupghome, "DROPSYNC_GPG_RECIPIENTS": self.recipients, "DROPSYNC_COUCHDB_URL": None,
                "DAGSTER_HOME": str(self.drop.root.parent / "dagster_home")}

    def target(self, read: int) -> Path:
        """The repository copy of read `read`."""
        return self.drop.repository / "scRNA/raw/btki/ABC_DEFGHI" / f"ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz"

    def archive(self, generation: int) -> Path:
        """The encrypted archive of one generation."""
        return self.archive_dir / f"{self.drop.key}.g{generation}.tar.gpg"


def sync(tmp_path: Path, gpg_keys, instance: dg.DagsterInstance, *, generations: int = 1) -> Synced:
    """Sync a two-file drop with archives; each further generation adds one more read."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2), os.urandom(200_000))  # big enough that a flipped bit lands inside it
    drop.add_file("SampleSheet.csv", b"Sample_ID\nS1\n")
    drop.mark_ready()
    synced = Synced(drop, tmp_path / "archive", tmp_path / "keys", gpg_keys.home, ",".join(gpg_keys.recipients))
    assert run_job(drop, instance, gpg=synced.gpg()).success
    for read in range(3, 3 + generations - 1):
        drop.add_file(fastq_relpath(read=read))
        assert run_job(drop, instance, gpg=synced.gpg()).success
    return synced


def dropsync(synced: Synced, *args: str) -> subprocess.CompletedProcess:
    """`dropsync ARGS` in a subprocess against the synced drop."""
    env = {k: v for k, v in {**os.environ, **synced.env()}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def flip_bit(path: Path, offset: int) -> None:
    """Flip one bit of `path` at `offset` in place (same size, same mtime: only the bytes rot)."""
    st = path.stat()
    path.chmod(st.st_mode | 0o200)  # repository copies are read-only
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x04]))
    path.chmod(st.st_mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
