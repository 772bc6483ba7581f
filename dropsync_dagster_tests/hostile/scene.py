"""One hostile case's scratch world: a drop with good files, the roots, and a canary outside them.

    base/
      scratch/drops/<drop>/      the drop under test: two good files + what the case plants
      scratch/drops/other_drop/  another drop of the same root (must stay unchanged)
      scratch/repository/        allowed root
      scratch/processed/         allowed root
      scratch/state/             DROPSYNC_STATE_DIR
      canary/                    outside every root: files, a root-only secret, link targets
      outside/                   an empty folder outside every root (`..` escapes aim here)

A case's `arrange(scene)` plants files, edits `scene.config` (written as `sync.yml` unless
`scene.config_text` is set), `scene.env` (None unsets) and `scene.hooks` (DROPSYNC_TEST_HOOKS).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dropsync_dagster_tests.support.drops import Drop, fastq_content, fastq_relpath, make_drop, seed_config

SECRET_TOKEN = b"ROOT-ONLY-SECRET-7f3a9c"
# Same length as a hostile source of `hostile_rel()`, so a swap keeps the planned size.
HOSTILE_REL = fastq_relpath(phase="evil", read=5)
GOOD_RELS = (fastq_relpath(read=1), fastq_relpath(read=2))


def plain_config(drop: Drop, **overrides: Any) -> dict[str, Any]:
    """The seed example without LabKey (the CLI would ask LabKey otherwise)."""
    return seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None, **overrides)


@dataclass
class Scene:
    """Paths and knobs of one case; `arrange` functions mutate it before the run."""

    base: Path
    drop: Drop
    other: Path
    canary: Path
    outside: Path
    config: dict[str, Any]
    config_text: str | bytes | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    hooks: dict[str, str] = field(default_factory=dict)
    good: list[str] = field(default_factory=lambda: list(GOOD_RELS))
    vanished: set[str] = field(default_factory=set)  # originals a hook removes on purpose
    mutated: set[str] = field(default_factory=set)  # originals a hook changes on purpose
    nlink_free: set[str] = field(default_factory=set)  # canary names whose link count may drop
    aside: dict[str, str] = field(default_factory=dict)  # original -> processed-relative place a hook moved its folder
    no_dac: bool = False  # run the CLI without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
    own_config: bool = True  # False: `arrange` planted its own sync.yml (a FIFO, a link...)

    @property
    def scratch(self) -> Path:
        return self.drop.root.parent

    @property
    def secret(self) -> Path:
        return self.canary / "secret.fastq.gz"

    @property
    def victim(self) -> Path:
        return self.canary / "victim.txt"

    @property
    def hook_dir(self) -> Path:
        """Where hooks leave their fired-once markers (not compared)."""
        return self.base / "hooks"

    def replace_config(self) -> Path:
        """Remove `sync.yml` so the case can plant something else at its name."""
        self.drop.config_path.unlink()
        self.own_config = False
        return self.drop.config_path

    def path(self, rel: str) -> Path:
        """A path inside the drop."""
        return self.drop.path / rel

    def add(self, rel: str, content: bytes | None = None) -> Path:
        """A regular file in the drop (parents too)."""
        return self.drop.add_file(rel, content)

    def hostile(self, rel: str = HOSTILE_REL, content: bytes | None = None) -> Path:
        """A regular hostile candidate; default content has the secret's size (for swaps)."""
        return self.add(rel, content if content is not None else secret_sized(rel))

    def link(self, rel: str, target: str | Path) -> Path:
        """A symlink in the drop."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        return path

    def fifo(self, rel: str) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path

    def sock(self, rel: str) -> Path:
        """A bound unix socket left behind (closed, the name stays); bound under a short path
        (AF_UNIX allows ~108 bytes) and renamed into the drop."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        short = Path(tempfile.mkdtemp(prefix="hs", dir="/tmp"))
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(short / "s"))
        os.rename(short / "s", path)
        short.rmdir()
        return path

    def hook(self, name: str, command: str, when: tuple[str, str] | None = None) -> None:
        """Install a shell command for hook `name`, run once per case; `when=(VAR, glob)` fires
        it only where the hook's `$VAR` matches (e.g. the hostile file's path), not on the first call."""
        marker = shlex.quote(str(self.hook_dir / f"{name}-fired"))
        command = f"[ -e {marker} ] || {{ touch {marker}; {command}; }}"
        if when is not None:
            command = f'case "${when[0]}" in {when[1]}) {command};; esac'
        self.hooks[name] = command

    def write_config(self) -> None:
        """Write `config_text` verbatim, else `config` as YAML (unless the case planted its own)."""
        if not self.own_config:
            return
        if self.config_text is None:
            self.drop.write_config(self.config)
        elif isinstance(self.config_text, bytes):
            self.drop.config_path.write_bytes(self.config_text)
        else:
            self.drop.config_path.write_text(self.config_text, encoding="utf-8")

    def full_env(self) -> dict[str, str]:
        """DROPSYNC_* for the CLI: the drop's, with the case's overrides (None unsets)."""
        env = self.drop.env()
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env


def secret_sized(rel: str) -> bytes:
    """Content unique to `rel`, padded or cut to the secret's length."""
    data = fastq_content(rel)
    size = len(secret_content())
    return (data + b"N" * size)[:size]


def secret_content() -> bytes:
    return b"@secret\n" + SECRET_TOKEN + b"\n+\n" + b"I" * 40 + b"\n"


def make_scene(base: Path, name: str) -> Scene:
    """The world of one case: good files in the drop, another drop, a canary, an outside folder."""
    base = Path(os.path.realpath(base))
    drop = make_drop(base / "scratch", name)
    other = drop.root / "other_drop"
    canary, outside = base / "canary", base / "outside"
    for folder in (other, canary / "dir" / "SEQ_ABCDE", canary / "outdir", outside, base / "hooks",
                   base / "scratch" / "state"):
        folder.mkdir(parents=True)
    (other / "sync.yml").write_text("drop_filename_filter: '*'\n")
    (other / "keep.fastq.gz").write_bytes(b"another drop's file\n")
    (canary / "plain.fastq.gz").write_bytes(b"canary plain file\n")
    (canary / "victim.txt").write_bytes(b"canary victim: must never change\n")
    (canary / "dir" / "SEQ_ABCDE" / "ABC_DEFGHI_S1_L001_R7_001.fastq.gz").write_bytes(b"canary in a folder\n")
    secret = canary / "secret.fastq.gz"
    secret.write_bytes(secret_content())
    secret.chmod(0o600)
    csv = canary / "secret.csv"
    csv.write_bytes(b"Prefix,Name\nABC_DEFGHI_S1_L001," + SECRET_TOKEN + b"\n")
    csv.chmod(0o600)
    os.symlink("/dev/zero", canary / "zero-link")
    scene = Scene(base, drop, other, canary, outside, plain_config(drop))
    scene.drop.add_file(GOOD_RELS[0], md5="correct")
    scene.drop.add_file(GOOD_RELS[1])
    scene.drop.mark_ready()
    return scene


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
