"""The deployment: every setting read from the environment, once, into typed values.

This is the only place that reads DROPSYNC_*, GNUPGHOME, LABKEY_API_KEY and DROPSYNC_TEST_HOOKS.
`core/` takes the typed values; `resources/deployment.py` turns them into the Dagster resources
of the code location, and the CLI uses them directly (this package never imports dagster, so
`dropsync plan` starts without it). A malformed value is a ConfigError of one line naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.drops.layout import inside
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.labkey import API_KEY_ENV
from dropsync_dagster.core.labkey.retry import RetryPolicy
from dropsync_dagster.core.settings import DEFAULT_READY_FILES, DropRoot, Settings
from dropsync_dagster.core.stewardship.settings import AuditSettings, StewardshipSettings
from dropsync_dagster.deployment.stewardship import audit_from_env, stewardship_from_env
from dropsync_dagster.deployment.values import (
    env_float, env_int, env_list, env_number, env_switch, env_text, file_mode, named_roots, root_folder,
)

if TYPE_CHECKING:  # imported when used, so that `dropsync --help` and `dropsync plan` start fast
    from dropsync_dagster.core.labkey.connection import LabKeyClient, LabKeyConnection
    from dropsync_dagster.core.status.store import StatusStore

DEFAULT_SENSOR_INTERVAL = 30


class StatusLimits(NamedTuple):
    """When the status store gives up on a drop and how long a claim lasts without a heartbeat."""

    max_failures: int  # failed runs before a drop is `failed`
    lease_seconds: float


@dataclass(frozen=True)
class CouchDBAccess:
    """A CouchDB status database (the credentials stay inside the store, never in messages)."""

    url: str
    db: str | None = None  # None: the store's default database name
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LabKeyAccess:
    """Credentials and retries for every LabKey a drop names (host and table come from sync.yml)."""

    api_key: str | None = field(default=None, repr=False)  # None: the client's ~/.netrc lookup
    attempts: int = RetryPolicy.attempts
    retry_delay: float = RetryPolicy.base_delay
    timeout: float = RetryPolicy.timeout

    def client(self, connection: LabKeyConnection) -> LabKeyClient:
        """A client for one drop's container (one per thread: it holds an HTTP session)."""
        from dropsync_dagster.core.labkey.connection import open_client

        return open_client(connection, self.api_key, self.attempts, self.retry_delay, self.timeout)


@dataclass(frozen=True)
class Deployment:
    """Everything a deployment configures, validated."""

    settings: Settings
    couchdb: CouchDBAccess | None  # None: the SQLite store in the state folder
    limits: StatusLimits
    archive: ArchivePolicy
    labkey: LabKeyAccess
    sensor_interval: int = DEFAULT_SENSOR_INTERVAL
    celery_queue_prefix: str = ""  # DROPSYNC_CELERY_QUEUE_PREFIX: two deployments can share one broker
    test_hooks: Mapping[str, str] = field(default_factory=dict)
    stewardship: StewardshipSettings = StewardshipSettings()  # alert channels, the stewardship job's cron
    audit: AuditSettings = AuditSettings()  # the scheduled fixity audit

    def status_store(self) -> StatusStore:
        """The deployment's status store: CouchDB when configured, else SQLite in the state folder."""
        if self.couchdb is None:
            from dropsync_dagster.core.status.opening import sqlite_store

            return sqlite_store(self.settings.state_dir)
        from dropsync_dagster.core.status.couchdb import DEFAULT_DB, CouchDBStatusStore

        access = self.couchdb
        return CouchDBStatusStore(access.url, access.db or DEFAULT_DB, access.user, access.password)


def deployment_from_env(env: Mapping[str, str] | None = None) -> Deployment:
    """Read and check every setting of `env` (default: the process environment)."""
    from dropsync_dagster.core.status.opening import DEFAULT_LEASE_SECONDS
    from dropsync_dagster.core.status.store import MAX_FAILURES

    env = os.environ if env is None else env
    settings = settings_from_env(env)
    return Deployment(
        settings=settings,
        couchdb=couchdb_from_env(env),
        limits=StatusLimits(env_int(env, "DROPSYNC_MAX_FAILURES", MAX_FAILURES),
                            env_float(env, "DROPSYNC_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
        archive=archive_from_env(env, settings.state_dir),
        labkey=labkey_from_env(env),
        sensor_interval=env_int(env, "DROPSYNC_SENSOR_INTERVAL", DEFAULT_SENSOR_INTERVAL),
        celery_queue_prefix=env.get("DROPSYNC_CELERY_QUEUE_PREFIX", ""),
        test_hooks=hook_commands_from_env(env),
        stewardship=stewardship_from_env(env),
        audit=audit_from_env(env),
    )


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """State folder, allowed/drop/metadata roots, readiness and file mode from DROPSYNC_*."""
    ready = env.get("DROPSYNC_READY_FILES")
    return settings_of(
        state_dir=env.get("DROPSYNC_STATE_DIR") or ".dropsync",
        allowed_roots=env_list(env, "DROPSYNC_ALLOWED_ROOTS", os.pathsep),
        drop_roots=named_roots(env.get("DROPSYNC_DROP_ROOTS", "")),
        metadata_roots=env_list(env, "DROPSYNC_METADATA_ROOTS", os.pathsep),
        ready_files=list(DEFAULT_READY_FILES) if ready is None else env_list(env, "DROPSYNC_READY_FILES"),
        quiet_seconds=env_number(env, "DROPSYNC_QUIET_SECONDS"),
        file_mode=file_mode(env.get("DROPSYNC_FILE_MODE", "")),
        quarantine_dir=env_text(env, "DROPSYNC_QUARANTINE_DIR"),
    )


def settings_of(state_dir: str | Path, allowed_roots: list[str], drop_roots: Mapping[str, str],
                metadata_roots: list[str], ready_files: list[str], quiet_seconds: float | None,
                file_mode: int | None, quarantine_dir: str | None = None) -> Settings:
    """Settings from typed values, every root checked (realpath, an existing folder, never `/`)."""
    allowed = tuple(root_folder("DROPSYNC_ALLOWED_ROOTS", p) for p in allowed_roots)
    roots = tuple(DropRoot(n, root_folder("DROPSYNC_DROP_ROOTS", p)) for n, p in drop_roots.items())
    return Settings(
        state_dir=Path(os.path.realpath(state_dir)),
        allowed_roots=allowed,
        drop_roots=roots,
        metadata_roots=tuple(root_folder("DROPSYNC_METADATA_ROOTS", p) for p in metadata_roots),
        ready_files=tuple(ready_files),
        quiet_seconds=quiet_seconds,
        file_mode=file_mode,
        quarantine_dir=quarantine_folder((quarantine_dir or "").strip(), allowed, roots),
    )


def quarantine_folder(value: str, allowed: tuple[Path, ...], drop_roots: tuple[DropRoot, ...]) -> Path | None:
    """DROPSYNC_QUARANTINE_DIR: an existing folder inside the allowed roots that neither holds nor
    lies in a drop root; unset or empty: quarantine is off."""
    if not value:
        return None
    real = root_folder("DROPSYNC_QUARANTINE_DIR", value)
    if not any(inside(real, root) for root in allowed):
        roots = os.pathsep.join(map(str, allowed)) or "unset"
        raise ConfigError(f"DROPSYNC_QUARANTINE_DIR: {real} is outside DROPSYNC_ALLOWED_ROOTS ({roots})")
    for root in drop_roots:
        if inside(real, root.path) or inside(root.path, real):
            raise ConfigError(f"DROPSYNC_QUARANTINE_DIR: {real} and drop root {root.path} lie in one another")
    return real


def couchdb_from_env(env: Mapping[str, str]) -> CouchDBAccess | None:
    """DROPSYNC_COUCHDB_URL/_DB/_USER/_PASSWORD; None (SQLite) when no URL is set."""
    url = env_text(env, "DROPSYNC_COUCHDB_URL")
    if url is None:
        return None
    return CouchDBAccess(url, env_text(env, "DROPSYNC_COUCHDB_DB"),
                         env_text(env, "DROPSYNC_COUCHDB_USER"), env_text(env, "DROPSYNC_COUCHDB_PASSWORD"))


def archive_from_env(env: Mapping[str, str], state_dir: Path) -> ArchivePolicy:
    """GNUPGHOME and DROPSYNC_GPG_RECIPIENTS/_ARCHIVE_DIR/_KEY_DIR/_REQUIRE_ARCHIVE."""
    return ArchivePolicy.configured(
        state_dir, env_list(env, "DROPSYNC_GPG_RECIPIENTS"), env_text(env, "DROPSYNC_ARCHIVE_DIR"),
        env_text(env, "DROPSYNC_KEY_DIR"), env_switch(env, "DROPSYNC_REQUIRE_ARCHIVE"), env_text(env, "GNUPGHOME"),
    )


def labkey_from_env(env: Mapping[str, str]) -> LabKeyAccess:
    """LABKEY_API_KEY (unset: ~/.netrc) and DROPSYNC_LABKEY_ATTEMPTS/_RETRY_DELAY/_TIMEOUT."""
    default = LabKeyAccess()
    return LabKeyAccess(
        api_key=(env.get(API_KEY_ENV) or "").strip() or None,
        attempts=env_int(env, "DROPSYNC_LABKEY_ATTEMPTS", default.attempts),
        retry_delay=env_float(env, "DROPSYNC_LABKEY_RETRY_DELAY", default.retry_delay),
        timeout=env_float(env, "DROPSYNC_LABKEY_TIMEOUT", default.timeout),
    )


def hook_commands_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """DROPSYNC_TEST_HOOKS: a JSON object {hook name: shell command} (core/testhooks.py)."""
    raw = env.get(testhooks.ENV) or ""
    if not raw:
        return {}
    try:
        hooks = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{testhooks.ENV}: not JSON: {exc}") from None
    if not isinstance(hooks, dict) or not all(isinstance(v, str) for v in hooks.values()):
        raise ConfigError(f"{testhooks.ENV}: expected a JSON object of hook name to shell command")
    return hooks


def install_test_hooks(deployment: Deployment) -> None:
    """At an entry point (the CLI's main, the code location's load): arm DROPSYNC_TEST_HOOKS."""
    testhooks.install_commands(deployment.test_hooks)
