"""`dropsync reconcile` through the real CLI: clean on a clean synced drop, then each planted
inconsistency found once, named by kind, drop and path (LabKey test server, gpg archive)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkey.api_wrapper import APIWrapper

from dropsync_dagster.core.stewardship.findings import FindingKind
from dropsync_dagster_tests.fixtures.labkey import LABKEY_CONTAINER
from dropsync_dagster_tests.stewardship.catalogued import synced_deployment
from dropsync_dagster_tests.support.drops import fastq_relpath
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
