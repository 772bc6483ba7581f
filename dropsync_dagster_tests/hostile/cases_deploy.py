"""Permissions of what dropsync writes, and secrets of the deployment that must never be echoed."""

from __future__ import annotations

import os
import stat

from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.hostile.harness import Case, snapshot
from dropsync_dagster_tests.hostile.scene import Scene, sha256

PERMISSIONS = "permissions"
SECRETS = "secrets in outputs"
PRIVATE, SETUID = fastq_relpath(phase="evil", read=5), fastq_relpath(phase="evil", read=6)
PASSWORD = "S3cr3t-Passw0rd-31337"
API_KEY = "apikey|0123456789abcdef-S3cr3t"


def private_sources(s: Scene) -> None:
    s.add(PRIVATE, b"@private\nACGT\n+\nIIII\n").chmod(0o600)
    s.add(SETUID, b"@setuid\nACGT\n+\nIIII\n").chmod(0o4755)
    s.good += [PRIVATE, SETUID]


def modes_kept(s: Scene) -> list[str]:
    """Repository copies no wider than their source, set-id bits dropped; state not world-readable."""
    want = {sha256(b"@private\nACGT\n+\nIIII\n"): 0o600, sha256(b"@setuid\nACGT\n+\nIIII\n"): 0o755}
    problems = []
    for rel, entry in snapshot(s.scratch / "repository").items():
        if entry[0] == stat.S_IFREG and entry[-1] in want and entry[1] != want[entry[-1]]:
            problems.append(f"repository copy {rel} is {entry[1]:o}, expected {want[entry[-1]]:o}")
    state = s.scratch / "state"
    for path in (state, state / "status.sqlite3"):
        if path.exists() and os.stat(path).st_mode & 0o007:
            problems.append(f"{path.name} is world-accessible ({stat.S_IMODE(os.stat(path).st_mode):o})")
    return problems


def env(**values: str):
    def arrange(s: Scene) -> None:
        s.env.update(values)
    return arrange


def labkey_unreachable(s: Scene) -> None:
    s.config = {**s.config, "labkey": {"host": "127.0.0.1:9", "use_ssl": False, "container": "LOOP Intercept",
                                         "schema": "exp", "table": "data"},
                "fields": {"Name": "<lib>_<seq>_r<run>", "Path_To_Synced_Data": None},
                "field_parameters": {"Path_To_Synced_Data": "file_list"}}
    s.env.update(LABKEY_API_KEY=API_KEY, DROPSYNC_LABKEY_ATTEMPTS="1", DROPSYNC_LABKEY_RETRY_DELAY="0")


CASES = [
    Case("private_and_setuid_sources", PERMISSIONS, "a 0600 original is never published 0644; set-id bits dropped; "
         "the state folder and status database are not world-readable", private_sources, 0, after=modes_kept),
    Case("file_mode_setuid_refused", PERMISSIONS, "DROPSYNC_FILE_MODE may not grant set-id bits",
         env(DROPSYNC_FILE_MODE="4755"), 2, said=("DROPSYNC_FILE_MODE",)),
    Case("couchdb_credentials_never_echoed", SECRETS, "an unreachable status server: one line, exit 3, no password",
         env(DROPSYNC_COUCHDB_URL=f"http://dropsync:{PASSWORD}@127.0.0.1:9/", DROPSYNC_COUCHDB_USER="dropsync",
             DROPSYNC_COUCHDB_PASSWORD=PASSWORD), 3, absent=(PASSWORD,)),
    Case("labkey_api_key_never_echoed", SECRETS, "an unreachable LabKey while planning: one line, exit 3, no API key",
         labkey_unreachable, 3, absent=(API_KEY, "0123456789abcdef"), command="plan"),
]
