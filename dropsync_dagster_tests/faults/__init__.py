"""The fault-injection suite (issue 11): a fault strikes a real run, a re-run follows, and one
checker (invariants.py) proves nothing was lost, duplicated, half-written or left diverging.

Every scenario builds a `World` (world.py): a tiny drop (three matched files, one with its own
`.md5`, one unmatched file) with LabKey (the test server, real `labkey` client), CouchDB (PouchDB
Server) and an encrypted archive (real gpg), both servers reached through `OutageProxy`s the test
can take down. Runs are the real CLI (`dropsync sync DROP --do-it --yes`, a subprocess) or the
`sync_drop` job in-process. Faults are placed with the named test hooks of core/testhooks.py:
`DROPSYNC_TEST_HOOKS` shell commands for the CLI (hooks.py: KILL, pause, kill_when_read...),
`testhooks.install` for the job.

    test_kills.py           SIGKILL at each step boundary and inside hashing, a large copy, between
                            publish and unlink, gpg, after a LabKey write, between moves, after moves
    test_disk_full.py       repository, archive, processed and state full mid-step (tmpfs; root)
    test_labkey.py          a write applied then 500 / connection dropped / timeout; an outage
    test_couchdb_down.py    the status store down at each step
    test_claims.py          two and three concurrent runs, racing runs, a lease shorter than a
                            step, SIGTERM
    test_sources_change.py  a source appended, deleted or replaced at each step

Run: `DROPSYNC_POUCHDB_BIN=... .venv/bin/python -m pytest -n 2 dropsync_dagster_tests/faults`.
The disk-full cases mount a tmpfs (root); without that right they skip, except under CI=true.
`b3sum -c` is used when installed; otherwise the sidecar is checked in Python as b3sum would.
"""
