"""The project's Definitions bound to a test drop's settings instead of the process environment."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock

import dagster as dg

from dropsync_dagster import definitions
from dropsync_dagster.definitions import defs
from dropsync_dagster.deployment import settings_from_env
from dropsync_dagster.resources.drop_results import DROP_RESULTS, DropResultsIOManager
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import SqliteStatusResource
from dropsync_dagster.resources.storage import StorageResource
from dropsync_dagster_tests.fixtures.labkey import LABKEY_API_KEY
from dropsync_dagster_tests.support.drops import Drop


def storage_for(env: dict[str, str]) -> StorageResource:
    """A StorageResource holding the settings of exactly these DROPSYNC_* values."""
    return StorageResource.of(settings_from_env(env))


NO_ARCHIVE = GpgResource(recipients=[], require_archive=False)
SQLITE_STATUS = SqliteStatusResource()  # the embedded store in the drop's state folder
# The LabKey test server's editor key (fixtures/labkey.py); tests of other credentials pass their own.
TEST_LABKEY = LabKeyResource(api_key=LABKEY_API_KEY)


def definitions_for(drop: Drop, **resources: object) -> dg.Definitions:
    """All assets, checks, jobs and sensors with test resources: storage from the drop's env,
    archives off unless a `gpg` resource is given, the SQLite status store unless `status` is,
    the LabKey test server's editor key unless `labkey` is."""
    return with_resources(drop.env(), **resources)


def with_resources(env: dict[str, str], **resources: object) -> dg.Definitions:
    """The project's Definitions with storage from `env`, archives off, the SQLite status store and
    the LabKey test server's key unless given, and the drop results' IO manager on the same
    storage and status store."""
    bound: dict[str, object] = {**(defs.resources or {}), "storage": storage_for(env), "gpg": NO_ARCHIVE,
                                "status": SQLITE_STATUS, "labkey": TEST_LABKEY, **resources}
    bound[DROP_RESULTS] = DropResultsIOManager(storage=bound["storage"], status=bound["status"])
    return dg.Definitions(
        assets=list(defs.assets or []),
        asset_checks=list(defs.asset_checks or []),
        jobs=list(defs.jobs or []),
        sensors=list(defs.sensors or []),
        executor=defs.executor,
        resources=bound,
    )


def run_job(drop: Drop, instance: dg.DagsterInstance, **resources: object) -> dg.ExecuteInProcessResult:
    """Register the drop's partition and execute the whole sync_drop job for it."""
    if drop.key not in instance.get_dynamic_partitions("drops"):
        instance.add_dynamic_partitions("drops", [drop.key])
    job = definitions_for(drop, **resources).resolve_job_def("sync_drop")
    return job.execute_in_process(partition_key=drop.key, instance=instance, raise_on_error=False)


@contextmanager
def code_location_loaded_with(env: Mapping[str, str]) -> Iterator[None]:
    """The code location (dropsync_dagster.definitions) loaded afresh with `env` in the process
    environment, as a run worker loads it; loaded again with the previous environment after."""
    try:
        with mock.patch.dict(os.environ, env):
            importlib.reload(definitions)
            yield
    finally:
        importlib.reload(definitions)
