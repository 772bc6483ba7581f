"""A drop synced through the Dagster job with LabKey rows and an encrypted archive, and the
`dropsync` CLI run as a subprocess against the same deployment (state, status store, LabKey)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config

FAST = LabKeyResource(api_key=LABKEY_API_KEY, attempts=2, retry_delay=0.01, timeout=5.0)
TARGET_DIR = "scRNA/raw/btki/ABC_DEFGHI"


@dataclass(frozen=True)
class Deployment:
    """One drop's deployment: its folders, the gpg resource, and the env of a CLI subprocess."""

    drop: Drop
    gpg: GpgResource
    netrc: Path

    def target(self, read: int) -> Path:
        """The repository copy of read `read`."""
        return self.drop.repository / TARGET_DIR / f"ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz"

    def env(self) -> dict[str, str]:
        """Everything a `dropsync` subprocess needs to see what the job wrote."""
        env = {**os.environ, **self.drop.env(), "DAGSTER_HOME": str(self.drop.root.parent / "dagster_home"),
               "LABKEY_API_KEY": LABKEY_API_KEY, "NETRC": str(self.netrc),
               "GNUPGHOME": self.gpg.gnupghome or "", "DROPSYNC_ARCHIVE_DIR": self.gpg.archive_dir or "",
               "DROPSYNC_KEY_DIR": self.gpg.key_dir or "", "DROPSYNC_GPG_RECIPIENTS": ",".join(self.gpg.recipients)}
        env.pop("DROPSYNC_COUCHDB_URL", None)
        return env

    def dropsync(self, *args: str) -> subprocess.CompletedProcess:
        """Run the real CLI."""
        return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=self.env(),
                              capture_output=True, text=True, timeout=120)


def synced_deployment(tmp_path: Path, gpg_keys: Any, labkey_section: dict[str, Any], name: str = "run_2026-11-20",
                      reads: tuple[int, ...] = (1, 2, 3)) -> Deployment:
    """Sync a drop of `reads` through the job: rows in LabKey, archived, originals moved."""
    drop = make_drop(tmp_path, name)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=labkey_section))
    for read in reads:
        drop.add_file(fastq_relpath(read=read), md5="correct")
    drop.mark_ready()
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    gpg = GpgResource(gnupghome=gpg_keys.home, recipients=list(gpg_keys.recipients),
                      archive_dir=str(tmp_path / "archive"), key_dir=str(tmp_path / "keys"))
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance, gpg=gpg, labkey=FAST).success
    return Deployment(drop, gpg, netrc)
