"""Shared fixtures: each real component's fixtures live in their own module under fixtures/."""

pytest_plugins = [
    "dropsync_dagster_tests.fixtures.gpg_keys",
    "dropsync_dagster_tests.fixtures.couchdb",
    "dropsync_dagster_tests.fixtures.labkey",
    "dropsync_dagster_tests.fixtures.postgres",
    "dropsync_dagster_tests.fixtures.dagster_procs",
]
