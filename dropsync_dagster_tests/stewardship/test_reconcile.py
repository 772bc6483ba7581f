"""`dropsync reconcile` through the real CLI: clean on a clean synced drop, then each planted
inconsistency found once, named by kind, drop and path (LabKey test server, gpg archive)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
from labkey.api_wrapper import APIWrapper

from dropsync_dagster.core.plan.frozen import write_plan
from dropsync_dagster.core.stewardship.findings import FindingKind
from dropsync_dagster.core.status.sqlite import DEFAULT_FILENAME, SqliteStatusStore
from dropsync_dagster_tests.fixtures.labkey import LABKEY_CONTAINER
from dropsync_dagster_tests.stewardship.catalogued import synced_deployment
from dropsync_dagster_tests.support.dagster_env import run_job
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config
from dropsync_dagster_tests.support.labkey_server import LabKeyTestServer


def test_a_clean_synced_drop_reconciles_clean(tmp_path: Path, gpg_keys: Any, labkey_env: LabKeyTestServer,
                                              labkey_section: dict[str, Any]) -> None:
    deployment = synced_deployment(tmp_path, gpg_keys, labkey_section)
    done = deployment.dropsync("reconcile")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    shown = json.loads(deployment.dropsync("reconcile", "--json").stdout)
    assert (shown["drops"], shown["files"], shown["findings"]) == (1, 3, [])


def test_each_planted_inconsistency_is_found(tmp_path: Path, gpg_keys: Any, labkey_env: LabKeyTestServer,
                                             labkey_section: dict[str, Any], labkey_api: APIWrapper) -> None:
    deployment = synced_deployment(tmp_path, gpg_keys, labkey_section)
    drop, key = deployment.drop, deployment.drop.key
    stray = deployment.target(1).parent / "stray.fastq.gz"  # no lineage names it
    stray.write_bytes(b"copied by hand")
    rows = {r["Path_To_Synced_Data"]: r for r in labkey_env.rows(LABKEY_CONTAINER, "exp", "data")}
    labkey_api.query.delete_rows("exp", "data", [{"RowId": rows[str(deployment.target(2))]["RowId"]}])
    ghost = drop.repository / "scRNA/raw/btki/ghost.fastq.gz"  # a row naming a file that is not there
    labkey_env.insert(LABKEY_CONTAINER, "exp", "data", [{"Name": "ghost", "Path_To_Synced_Data": str(ghost)}])
    index = Path(deployment.gpg.archive_dir or "") / f"{key}.g1.members.json"
    members = json.loads(index.read_text())
    del members["members"][fastq_relpath(read=3)]  # the archive's index lost a member
    index.write_text(json.dumps(members))
    os.unlink(drop.processed / fastq_relpath(read=1))  # an original neither in the drop nor processed

    done = deployment.dropsync("reconcile")
    assert done.returncode == 1, done.stderr
    lines = sorted(line.split("\t")[:3] for line in done.stdout.splitlines())
    assert lines == sorted([
        [FindingKind.NO_LINEAGE, key, str(stray)],
        [FindingKind.NO_LABKEY_ROW, key, str(deployment.target(2))],
        [FindingKind.LABKEY_ROW_MISSING_FILE, key, str(ghost)],
        [FindingKind.ARCHIVE_MEMBER_MISSING, key, fastq_relpath(read=3)],
        [FindingKind.ORIGINAL_MISSING, key, str(drop.path / fastq_relpath(read=1))],
    ])
    shown = json.loads(deployment.dropsync("reconcile", "--json").stdout)
    assert {f["kind"] for f in shown["findings"]} == {k.value for k in FindingKind}
    later = deployment.dropsync("reconcile", "--since", "2999-01-01")
    assert (later.returncode, later.stdout) == (0, ""), later.stderr  # nothing changed since then


def test_a_live_runs_copies_are_not_strays_until_it_ends(tmp_path: Path) -> None:
    """Defect: a run publishes a copy before it writes its lineage; reconcile called it `no_lineage`."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1))
    drop.mark_ready()
    with dg.instance_for_test() as instance:
        assert run_job(drop, instance).success
    drop.add_file(fastq_relpath(read=2))  # a new file: a live run has planned and copied it, no lineage yet
    plan = drop.plan()
    write_plan(drop.settings().state_dir, plan)  # the live run's frozen plan, made current
    (copy,) = [Path(e.target) for e in plan.entries if e.relpath == fastq_relpath(read=2) and e.target]
    shutil.copyfile(drop.path / fastq_relpath(read=2), copy)
    store = SqliteStatusStore(drop.settings().state_dir / DEFAULT_FILENAME)
    store.claim(drop.key, "live-run", "host:1", 600)
    env = {**os.environ, **drop.env()}
    env.pop("DROPSYNC_COUCHDB_URL", None)
    cli = [sys.executable, "-m", "dropsync_dagster.cli", "reconcile"]
    during = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert (during.returncode, during.stdout) == (0, ""), during.stderr
    assert f"{drop.key}: a run holds it" in during.stderr
    store.release(drop.key, "live-run")  # the run died before writing lineage: now it is a stray
    after = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 1 and after.stdout.split("\t")[:3] == [FindingKind.NO_LINEAGE, drop.key, str(copy)]
