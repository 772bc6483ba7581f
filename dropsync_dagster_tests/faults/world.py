"""One fault scenario's world: a tiny drop with LabKey, CouchDB and an encrypted archive, the real
`dropsync` CLI as a subprocess, and what the drop held before any fault (for the invariants).

    world.sync(hooks={"copied": once(world.hooks, "copied", KILL)})   # faulted run
    world.sync()                                                       # the re-run
    check_invariants(world, rerun)

LabKey (the shared test server) and CouchDB (the session's PouchDB Server) are reached through
`OutageProxy`s owned by this test, so `world.couchdb.down()` is an outage for this test alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from dropsync_dagster.core.plan.report import GATE_REASONS
from dropsync_dagster.core.status.store import StatusStore
from dropsync_dagster.deployment import deployment_from_env
from dropsync_dagster.resources.deployment import resources_of
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.cli.runner import first_failure
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.fixtures.couchdb import CouchDBDatabase
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys
from dropsync_dagster_tests.fixtures.labkey import EXP_DATA_COLUMNS, LABKEY_API_KEY, LABKEY_CONTEXT
from dropsync_dagster_tests.faults.hooks import once, pause
from dropsync_dagster_tests.faults.proxy import OutageProxy
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer

# Three matched files (one with its own `.md5`), and one the regex does not match.
FILES = (fastq_relpath(read=1), fastq_relpath(read=2), fastq_relpath(lib="XYZ_QWERTY", seq="SEQ_ZZZZZ"))
WITH_MD5 = FILES[0]
UNMATCHED = "notes/readme.txt"
BIG = fastq_relpath(lib="BIG_BIGBIG")
RUN_TIMEOUT = 120


@dataclass
class World:
    """The drop, its servers, its folders and the record of every content each original had."""

    base: Path
    drop: Drop
    labkey: LabKeyTestServer
    labkey_proxy: OutageProxy
    couchdb: OutageProxy
    couch_db: CouchDBDatabase
    gpg: GpgKeys
    container: str
    dagster_home: Path
    known: dict[str, list[bytes]] = field(default_factory=dict)  # relpath -> every content it had
    gone: set[str] = field(default_factory=set)  # deleted by the test on purpose

    @property
    def hooks(self) -> Path:
        """Where hook commands leave their markers (`<name>.fired`, `.reached`, `.go`)."""
        return self.base / "hooks"

    @property
    def archive_dir(self) -> Path:
        return self.base / "archive"

    @property
    def key_dir(self) -> Path:
        return self.base / "keys"

    @property
    def state_dir(self) -> Path:
        return self.base / "state"

    def snapshot(self) -> None:
        """Remember every regular file of the drop as it is now (call after building, before runs)."""
        for path in sorted(self.drop.path.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.known.setdefault(path.relative_to(self.drop.path).as_posix(), []).append(path.read_bytes())

    def changed(self, relpath: str) -> None:
        """Record a test's change to a source right after making it: its new content is a
        legitimate version too, or it is gone on purpose."""
        path = self.drop.path / relpath
        if path.exists():
            self.known.setdefault(relpath, []).append(path.read_bytes())
        else:
            self.gone.add(relpath)

    def add_big(self, mebibytes: int) -> Path:
        """A large matched file (for kills inside hashing or a large copy), remembered as known."""
        data = os.urandom(1 << 20) * mebibytes
        self.known.setdefault(BIG, []).append(data)
        return self.drop.add_file(BIG, data)

    # ---- environment and runs -----------------------------------------------------------
    def env(self, hooks: dict[str, str] | None = None, **extra: str | None) -> dict[str, str]:
        """The CLI's environment: drop settings, archive, LabKey credentials, status store, hooks."""
        ours = {
            "DAGSTER_HOME": str(self.dagster_home),
            "GNUPGHOME": self.gpg.home,
            "DROPSYNC_GPG_RECIPIENTS": ",".join(self.gpg.recipients),
            "DROPSYNC_ARCHIVE_DIR": str(self.archive_dir),
            "DROPSYNC_KEY_DIR": str(self.key_dir),
            "LABKEY_API_KEY": LABKEY_API_KEY,
            "NETRC": str(self.base / "netrc"),
            "DROPSYNC_LABKEY_RETRY_DELAY": "0.01",
            "DROPSYNC_LABKEY_TIMEOUT": "5",
            "COLUMNS": "400",  # summary tables name every file in full
            "DROPSYNC_TEST_HOOKS": json.dumps(hooks or {}),
            **self.couch_db.env(),
        }
        unset = [name for name, value in extra.items() if value is None]
        env = {**os.environ, **self.drop.env(**ours, **extra)}
        return {name: value for name, value in env.items() if name not in unset}

    def start(self, hooks: dict[str, str] | None = None, *args: str, **extra: str | None) -> subprocess.Popen[str]:
        """`dropsync sync DROP --do-it --yes` started in the background."""
        return subprocess.Popen(
            [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(self.drop.path), "--do-it", "--yes", *args],
            env=self.env(hooks, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def sync(self, hooks: dict[str, str] | None = None, **extra: str | None) -> subprocess.CompletedProcess[str]:
        """`dropsync sync DROP --do-it --yes` to its end (or its death)."""
        return finish(self.start(hooks, **extra))

    def cli(self, *args: str, **extra: str | None) -> subprocess.CompletedProcess[str]:
        """Any other `dropsync` command with this world's environment."""
        return subprocess.run([sys.executable, "-m", "dropsync_dagster.cli", *args], env=self.env(**extra),
                              capture_output=True, text=True, timeout=RUN_TIMEOUT)

    def run_job(self, instance: dg.DagsterInstance, **labkey: float) -> dg.ExecuteInProcessResult:
        """The `sync_drop` job in this process (in-process hooks: core.testhooks.install), with
        the resources the code location builds from `env()`; `labkey` overrides LabKeyResource fields."""
        env = self.env()
        resources = resources_of(deployment_from_env(env), env)
        resources["labkey"] = LabKeyResource(**{**resources["labkey"].model_dump(), **labkey})
        del resources["storage"]  # run_job's, from the drop's settings (the same DROPSYNC_* values)
        return run_job(self.drop, instance, **resources)

    def job_outcome(self, result: dg.ExecuteInProcessResult) -> subprocess.CompletedProcess[str]:
        """A job run told as the CLI would: exit 0/1/3, one line per original with its outcome."""
        if not result.success:
            return subprocess.CompletedProcess("sync_drop", 3, "", first_failure(result))
        moves = result.output_for_node("archived_originals").files
        lines = [f"{rel} {move.label}" for rel, move in moves.items()]
        held = any(move.reason in GATE_REASONS for move in moves.values())
        return subprocess.CompletedProcess("sync_drop", 1 if held else 0, "\n".join(lines), "")

    # ---- rendezvous with hooks.pause -----------------------------------------------------
    def wait_at(self, name: str, proc: subprocess.Popen[str]) -> int:
        """Wait until `proc` (or a process it runs) is paused at hook `name`; returns that pid."""
        reached = self.hooks / f"{name}.reached"
        deadline = time.monotonic() + RUN_TIMEOUT
        while not reached.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"run ended (exit {proc.returncode}) before hook {name!r}: {err.strip()}\n{out[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"hook {name!r} not reached within {RUN_TIMEOUT} s")
            time.sleep(0.02)
        return int(reached.read_text())

    def sync_paused(self, name: str, act: Callable[[int], object], skip: int = 0,
                    **extra: str | None) -> subprocess.CompletedProcess[str]:
        """A run that stops at hook `name` (after `skip` passes), lets the test `act(pid)`, then
        goes on to its end."""
        proc = self.start({name: once(self.hooks, name, pause(self.hooks, name), skip)}, **extra)
        try:
            act(self.wait_at(name, proc))
        finally:
            self.release(name)
        return finish(proc)

    def release(self, name: str) -> None:
        """Let a run paused at hook `name` go on."""
        (self.hooks / f"{name}.go").touch()

    def fired(self, name: str) -> bool:
        """True once hook `name`'s one-shot command ran."""
        return (self.hooks / f"{name}.fired").exists()

    # ---- what the servers hold ------------------------------------------------------------
    def store(self) -> StatusStore:
        """The status store the runs use (CouchDB, through this test's proxy)."""
        return deployment_from_env(self.env()).status_store()

    def rows(self) -> list[dict]:
        """Every row of this test's LabKey table."""
        return self.labkey.rows(self.container, "exp", "data")


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a started run; its output as a CompletedProcess."""
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def build_world(base: Path, labkey: LabKeyTestServer, couch_db: CouchDBDatabase, gpg: GpgKeys,
                dagster_home: Path) -> World:
    """The drop (three matched files, one `.md5`, one unmatched file), its LabKey table, proxies.
    The drop's folder name is unique, so worlds can share one Dagster instance."""
    base = Path(os.path.realpath(base))
    container = f"Faults/{uuid.uuid4().hex[:10]}"
    labkey.create_table(container, "exp", "data", EXP_DATA_COLUMNS)
    labkey_proxy = OutageProxy("127.0.0.1", labkey.port).up()
    host, _, port = couch_db.url.removeprefix("http://").partition(":")
    couchdb = OutageProxy(host, int(port)).up()
    proxied = CouchDBDatabase(f"http://{couchdb.address}", couch_db.user, couch_db.password, couch_db.db)
    drop = make_drop(base, f"run_{uuid.uuid4().hex[:8]}")
    drop.write_config(seed_config(
        drop.repository, drop.processed,
        labkey={"host": labkey_proxy.address, "container": container, "context": LABKEY_CONTEXT,
                "use_ssl": False, "schema": "exp", "table": "data"},
        fields={"Name": "<lib>_<seq>_r<run>_<suffix>", "Run_Number": "<run>", "Data_synced": True,
                "Path_To_Synced_Data": None},
        presence_check={"field": "Name", "match": "equal"},
    ))
    for relpath in FILES:
        drop.add_file(relpath, md5="correct" if relpath == WITH_MD5 else None)
    drop.add_file(UNMATCHED, b"not a sequencing file\n")
    drop.mark_ready()
    for folder in ("hooks", "archive", "keys"):
        (base / folder).mkdir()
    (base / "netrc").write_text("")
    return World(base, drop, labkey, labkey_proxy, couchdb, proxied, gpg, container, dagster_home)
