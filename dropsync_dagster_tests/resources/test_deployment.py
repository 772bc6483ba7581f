"""Resources chosen in one place: typed values read once from the environment, the status store
picked by class, secrets bound as EnvVars, and a malformed setting failing the code location's load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.status.couchdb import CouchDBStatusStore
from dropsync_dagster.core.status.sqlite import SqliteStatusStore
from dropsync_dagster.deployment import StatusLimits, deployment_from_env
from dropsync_dagster.resources.deployment import resources_of
from dropsync_dagster.resources.status import CouchStatusResource, SqliteStatusResource


def test_without_couchdb_the_status_store_is_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    env = {"DROPSYNC_STATE_DIR": str(tmp_path / "state"), "DROPSYNC_LEASE_SECONDS": "30",
           "DROPSYNC_MAX_FAILURES": "5"}
    resources = resources_of(deployment_from_env(env), env)
    status = resources["status"]
    assert isinstance(status, SqliteStatusResource)
    assert status.limits() == StatusLimits(max_failures=5, lease_seconds=30.0)
    store = status.store(resources["storage"].settings())
    assert isinstance(store, SqliteStatusStore)
    store.register("seq-a", "/drops/a")
    assert deployment_from_env(env).status_store().get("seq-a").status == "pending"  # the CLI's store is the same


def test_with_couchdb_the_status_resource_is_couchdb(tmp_path: Path) -> None:
    env = {"DROPSYNC_STATE_DIR": str(tmp_path), "DROPSYNC_COUCHDB_URL": "http://127.0.0.1:9/",
           "DROPSYNC_COUCHDB_USER": "u", "DROPSYNC_COUCHDB_PASSWORD": "pw"}
    status = resources_of(deployment_from_env(env), env)["status"]
    assert isinstance(status, CouchStatusResource)
    assert (status.url, status.db, status.user, status.password) == ("http://127.0.0.1:9/", "dropsync", "u", "pw")
    assert isinstance(deployment_from_env(env).status_store(), CouchDBStatusStore)


def test_values_are_typed(tmp_path: Path) -> None:
    (tmp_path / "drops").mkdir()
    env = {"DROPSYNC_STATE_DIR": str(tmp_path / "state"), "DROPSYNC_DROP_ROOTS": f"seq={tmp_path / 'drops'}",
           "DROPSYNC_GPG_RECIPIENTS": "a@x.test, b@x.test", "DROPSYNC_REQUIRE_ARCHIVE": "no",
           "DROPSYNC_LABKEY_ATTEMPTS": "2", "DROPSYNC_LABKEY_TIMEOUT": "7.5", "LABKEY_API_KEY": " key ",
           "DROPSYNC_QUIET_SECONDS": "60", "DROPSYNC_FILE_MODE": "0640", "DROPSYNC_SENSOR_INTERVAL": "5"}
    deployment = deployment_from_env(env)
    resources = resources_of(deployment, env)
    gpg, labkey, storage = resources["gpg"], resources["labkey"], resources["storage"]
    assert gpg.recipients == ["a@x.test", "b@x.test"] and gpg.require_archive is False
    assert (labkey.attempts, labkey.timeout, labkey.api_key) == (2, 7.5, "key")
    assert storage.drop_roots == {"seq": str(tmp_path / "drops")} and storage.file_mode == 0o640
    assert storage.quiet_seconds == 60.0 and deployment.sensor_interval == 5
    assert storage.settings() == deployment.settings
    assert deployment_from_env({}).labkey.api_key is None  # the client's ~/.netrc lookup


def test_secrets_are_bound_as_env_vars_so_the_ui_shows_their_names() -> None:
    env = {"LABKEY_API_KEY": "s3cret", "DROPSYNC_COUCHDB_URL": "http://127.0.0.1:9/",
           "DROPSYNC_COUCHDB_PASSWORD": "pa55"}
    with mock.patch.dict(os.environ, env):
        resources = resources_of(deployment_from_env())
        shown = {name: r._get_non_default_public_field_values() for name, r in resources.items()}  # noqa: SLF001
        assert resources["labkey"].process_config_and_initialize().api_key == "s3cret"
    assert shown["labkey"]["api_key"] == dg.EnvVar("LABKEY_API_KEY")
    assert shown["status"]["password"] == dg.EnvVar("DROPSYNC_COUCHDB_PASSWORD")
    assert "s3cret" not in repr(shown) and "pa55" not in repr(shown)


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("DROPSYNC_REQUIRE_ARCHIVE", "maybe", "DROPSYNC_REQUIRE_ARCHIVE: expected true/false, got 'maybe'"),
    ("DROPSYNC_MAX_FAILURES", "2.5", "DROPSYNC_MAX_FAILURES: not a whole number: '2.5'"),
    ("DROPSYNC_GPG_RECIPIENTS", "", None),
])
def test_a_malformed_setting_is_one_line_naming_it(name: str, value: str, needle: str | None) -> None:
    env = {name: value, "DROPSYNC_REQUIRE_ARCHIVE": "true"} if needle is None else {name: value}
    with pytest.raises(ConfigError) as info:
        deployment_from_env(env)
    message = str(info.value)
    assert "\n" not in message
    assert message == needle if needle else message.startswith("DROPSYNC_REQUIRE_ARCHIVE is on but DROPSYNC_GPG_RECIPIENTS")


def test_a_malformed_setting_fails_the_code_location_load_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
    env.update({"DROPSYNC_STATE_DIR": str(tmp_path), "DROPSYNC_LEASE_SECONDS": "soon"})
    done = subprocess.run([sys.executable, "-c", "import dropsync_dagster.definitions"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    naming = [line for line in done.stderr.splitlines() if "DROPSYNC_LEASE_SECONDS" in line]
    assert naming == ["dropsync_dagster.core.errors.ConfigError: DROPSYNC_LEASE_SECONDS: not a number: 'soon'"]
    assert done.stderr.splitlines()[-1] == naming[0]
