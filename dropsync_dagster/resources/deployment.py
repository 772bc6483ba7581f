"""The code location's resources, chosen in one place from the deployment's environment.

Values come from `dropsync_dagster.deployment` (read and checked once, so a malformed setting
fails the code location's load with one line naming it). Typed fields carry resolved values;
each field's description names its variable, which the UI shows beside the value. The secrets
(LABKEY_API_KEY, DROPSYNC_COUCHDB_PASSWORD) are bound as dg.EnvVar instead, so the UI and the
run's config show the variable's name, never its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from dropsync_dagster.core.labkey import API_KEY_ENV
from dropsync_dagster.deployment import Deployment
from dropsync_dagster.resources.drop_results import DROP_RESULTS, DropResultsIOManager
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import CouchStatusResource, SqliteStatusResource, StatusResource
from dropsync_dagster.resources.stewardship import StewardshipResource
from dropsync_dagster.resources.storage import StorageResource

PASSWORD_ENV = "DROPSYNC_COUCHDB_PASSWORD"
SMTP_PASSWORD_ENV = "DROPSYNC_SMTP_PASSWORD"
WEBHOOK_ENV = "DROPSYNC_ALERT_WEBHOOK_URL"  # a Slack-style URL is itself a token


def resources_of(deployment: Deployment, env: Mapping[str, str] | None = None) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """storage, gpg, status, labkey, stewardship and the drop results' IO manager for this deployment; secrets as EnvVars when `env` is the
    process environment (where Dagster resolves them), else as the values read."""
    env = os.environ if env is None else env
    storage, status = StorageResource.of(deployment.settings), status_resource(deployment, env)
    return {
        "storage": storage,
        "gpg": GpgResource.of(deployment.archive),
        "status": status,
        # Results between the drop assets: JSON per drop and asset in the state folder.
        DROP_RESULTS: DropResultsIOManager(storage=storage, status=status),
        "labkey": LabKeyResource(
            api_key=_secret(env, API_KEY_ENV, deployment.labkey.api_key), attempts=deployment.labkey.attempts,
            retry_delay=deployment.labkey.retry_delay, timeout=deployment.labkey.timeout,
        ),
        "stewardship": StewardshipResource.of(
            deployment.stewardship, webhook_url=_secret(env, WEBHOOK_ENV, deployment.stewardship.webhook_url),
            smtp_password=_secret(env, SMTP_PASSWORD_ENV, deployment.stewardship.smtp and deployment.stewardship.smtp.password),
        ),
    }


def status_resource(deployment: Deployment, env: Mapping[str, str]) -> StatusResource:
    """CouchDB when the deployment names one, else SQLite in the state folder."""
    max_failures, lease_seconds = deployment.limits.max_failures, deployment.limits.lease_seconds
    couch = deployment.couchdb
    if couch is None:
        return SqliteStatusResource(max_failures=max_failures, lease_seconds=lease_seconds)
    return CouchStatusResource(
        url=couch.url, user=couch.user, password=_secret(env, PASSWORD_ENV, couch.password),
        max_failures=max_failures, lease_seconds=lease_seconds, **({"db": couch.db} if couch.db else {}),
    )


def _secret(env: Mapping[str, str], name: str, value: str | None):
    """An EnvVar for a secret read from the process environment; the value itself otherwise."""
    if value is None:
        return None
    return dg.EnvVar(name) if env is os.environ else value
