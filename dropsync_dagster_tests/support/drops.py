"""Realistic test drops: a drop root holding one drop folder, its `sync.yml`, FASTQ-like files.

    drop = make_drop(tmp_path)                   # seed README config; repository, processed under tmp_path
    drop.add_file(fastq_relpath(lib="ABC_DEFGHI", read=2), md5="correct")
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None,
                                  field_parameters=None))   # the same without LabKey
    drop.mark_ready()
    env = drop.env()                             # DROPSYNC_* for a subprocess or settings_from_env
    plan = drop.plan()                           # make_plan on this drop, read-only
    drop.write_config(SEED_MINIMAL)              # the seed README's own sync.yml texts, verbatim

File contents are tiny and derived from the relative path, so two files never share content
unless a test says so.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, load_config
from dropsync_dagster.core.drops.discovery import DropFolder, drop_key
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.planner import make_plan
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.deployment import settings_from_env

# spec/sync-yml.md "A complete example" (the seed README's), as Python text.
SEED_REGEX = (
    r"[^\/]+\/(?P<phase>[^\/]+)\/.*(?P<seq>SEQ_[A-Z]{5}).*"
    r"(?P<prefix>(?P<lib>[A-Z]{3}_[A-Z]{6})_[A-Z][0-9]+_[A-Z][0-9]{3})_(?P<suffix>[^.]+)"
)
SEED_FILENAME = "scRNA/raw/<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz"

# The seed README's "Minimal config (no metadata usage)", verbatim (indentation restored):
# double-quoted YAML with `\/` escapes, `field_parameters` without `fields`, trailing comments.
SEED_MINIMAL = r"""# <drop_folder>/sync.yml
drop_filename_filter: "**/*.fastq.gz"
drop_filename_regex: "[^\\/]+\\/(?P<phase>[^\\/]+)\/.*(?P<seq>SEQ_[A-Z]{5}).*(?P<prefix>(?P<lib>[A-Z]{3}_[A-Z]{6})_[A-Z][0-9]+_[A-Z][0-9]{3})_(?P<suffix>[^.]+)"
repository_folder: /cluster/work/nexusintercept/data-repository
repository_filename: scRNA/raw/<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz
processed_folder: /cluster/work/nexusintercept/data-processed
filename_sequence: run
labkey:
  host: intercept-labkey-dev.nexus.ethz.ch # set to your LabKey host
  container: "LOOP Intercept" # set to your LabKey container/folder
  schema: exp # adjust to your schema
  table: data # adjust to your table
field_parameters:
  Path_To_Synced_Data: file_list
"""

# The seed README's `dm/sync.yml.TEMPLATE` excerpt, verbatim (indentation restored).
SEED_TEMPLATE = r"""drop_filename_regex: "[^\/]+\/(?P<phase>[^\/]+)\/.*(?P<seq>SEQ_[A-Z]{5}).*(?P<prefix>(?P<lib>[A-Z]{3}_[A-Z]{6})_[A-Z][0-9]+_[A-Z][0-9]{3})_(?P<suffix>[^.]+)"
drop_filename_filter: "**/*.fastq.gz"
repository_folder: data/repository
repository_filename: scRNA/raw/<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz
processed_folder: data/processed
filename_sequence: run
labkey:
  host: your-labkey-host.example.org
  container: LOOP Intercept
  schema: exp
  table: data
fields:
  Name: <lib>_<seq>_r<run>
  Project_Phase: <phase>
  Run_Number: <run>
  Uploaded_Filename_Prefix: <prefix>
  Data_synced: true
  Date_Of_Syncing: now()
  Date_Of_Uploading: drop_file_mtime()
  Path_To_Synced_Data:
field_parameters:
  Path_To_Synced_Data: file_list
  Uploaded_Filename_Prefix: file_list_aggregator
lookups:
  phase:
    btki: BTKi
"""


def seed_config(repository: Path | str, processed: Path | str, **overrides: Any) -> dict[str, Any]:
    """The spec's complete example with these folders; `key=value` overrides, `key=None` removes."""
    config: dict[str, Any] = {
        "drop_filename_filter": "**/*.fastq.gz",
        "drop_filename_regex": SEED_REGEX,
        "repository_folder": str(repository),
        "repository_filename": SEED_FILENAME,
        "processed_folder": str(processed),
        "filename_sequence": "run",
        "labkey": {"host": "labkey.example.org", "container": "LOOP Intercept", "schema": "exp", "table": "data"},
        "fields": {
            "Name": "<lib>_<seq>_r<run>",
            "Project_Phase": "<phase>",
            "Run_Number": "<run>",
            "Uploaded_Filename_Prefix": "<prefix>",
            "Data_synced": True,
            "Date_Of_Syncing": "now()",
            "Date_Of_Uploading": "drop_file_mtime()",
            "Path_To_Synced_Data": None,
        },
        "field_parameters": {"Path_To_Synced_Data": "file_list"},
    }
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def fastq_relpath(
    phase: str = "btki",
    lib: str = "ABC_DEFGHI",
    seq: str = "SEQ_ABCDE",
    *,
    sample: int = 1,
    lane: int = 1,
    read: int = 1,
    date: str = "2026-11-20",
    project: str = "scRNA",
) -> str:
    """A drop-relative name like the seed README's `scRNA/btki/2026-11-20/SEQ_ABCDE/ABC_DEFGHI_S1_L001_R1_001.fastq.gz`."""
    return f"{project}/{phase}/{date}/{seq}/{lib}_S{sample}_L{lane:03d}_R{read}_001.fastq.gz"


def fastq_content(relpath: str) -> bytes:
    """Tiny FASTQ-like content unique to `relpath`."""
    return f"@{relpath}\nACGTACGTNN\n+\nIIIIIIIIII\n".encode()


@dataclass(frozen=True)
class Drop:
    """A drop folder `path` under the drop root `root`, with repository and processed folders beside."""

    root: Path
    path: Path
    repository: Path
    processed: Path
    root_name: str = "seq"

    @property
    def key(self) -> str:
        """The drop's partition key."""
        return drop_key(self.root_name, self.path.name)

    @property
    def config_path(self) -> Path:
        """The drop's `sync.yml`."""
        return self.path / CONFIG_NAME

    def write_config(self, config: dict[str, Any] | str) -> Path:
        """Write `sync.yml` from a dict (as YAML) or verbatim text."""
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    def add_file(
        self,
        relpath: str,
        content: bytes | None = None,
        *,
        md5: Literal["correct", "wrong"] | None = None,
        mtime: float | None = None,
    ) -> Path:
        """Create a file (parents too); optionally an `md5sum`-format `.md5` sidecar, right or wrong."""
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        data = fastq_content(relpath) if content is None else content
        path.write_bytes(data)
        if md5 is not None:
            digest = hashlib.md5(data if md5 == "correct" else data + b"corrupt").hexdigest()
            Path(f"{path}.md5").write_text(f"{digest}  {path.name}\n")
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def mark_ready(self, rsync_exitcode: str | None = None) -> Path:
        """Write the `.ready` sentinel, or `.metadata_rsync_exitcode` with this content."""
        if rsync_exitcode is None:
            sentinel = self.path / ".ready"
            sentinel.touch()
        else:
            sentinel = self.path / ".metadata_rsync_exitcode"
            sentinel.write_text(rsync_exitcode)
        return sentinel

    def env(self, **extra: str | None) -> dict[str, str]:
        """DROPSYNC_* for this drop (allowed roots: repository and processed); `NAME=None` unsets."""
        env = {
            "DROPSYNC_DROP_ROOTS": f"{self.root_name}={self.root}",
            "DROPSYNC_ALLOWED_ROOTS": os.pathsep.join([str(self.repository), str(self.processed)]),
            "DROPSYNC_STATE_DIR": str(self.root.parent / "state"),
        }
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def settings(self, **extra: str | None) -> Settings:
        """The settings of `env(**extra)` only (the process environment is ignored)."""
        return settings_from_env(self.env(**extra))

    def folder(self) -> DropFolder:
        """The DropFolder the core functions take."""
        return DropFolder(self.key, self.root_name, self.path)

    def plan(self, settings: Settings | None = None, **kwargs: Any) -> Plan:
        """Load `sync.yml` and plan this drop (keyword arguments go to make_plan)."""
        return make_plan(self.folder(), load_config(self.config_path), settings or self.settings(), **kwargs)


def make_drop(
    base: Path,
    name: str = "run_2026-11-20",
    *,
    root_name: str = "seq",
    config: dict[str, Any] | str | None = None,
) -> Drop:
    """Make `base/drops/<name>`, `base/repository`, `base/processed`; write `config` or the seed config."""
    base = Path(os.path.realpath(base))
    root = base / "drops"
    drop = Drop(root, root / name, base / "repository", base / "processed", root_name)
    for folder in (drop.path, drop.repository, drop.processed):
        folder.mkdir(parents=True, exist_ok=True)
    drop.write_config(seed_config(drop.repository, drop.processed) if config is None else config)
    return drop
