"""Stewardship settings: each malformed value is one line naming its variable, also at load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.stewardship.settings import DEFAULT_CRON, StewardshipSettings
from dropsync_dagster.deployment.stewardship import stewardship_from_env

SMTP = {"DROPSYNC_SMTP_HOST": "mail.lab.test", "DROPSYNC_SMTP_FROM": "dropsync@lab.test", "DROPSYNC_SMTP_TO": "a@lab.test, b@lab.test"}


def test_defaults_and_a_full_smtp_setting() -> None:
    assert stewardship_from_env({}) == StewardshipSettings(smtp=None, webhook_url=None, cron=DEFAULT_CRON)
    smtp = stewardship_from_env({**SMTP, "DROPSYNC_SMTP_PORT": "587", "DROPSYNC_SMTP_STARTTLS": "true",
                                         "DROPSYNC_SMTP_USER": "u", "DROPSYNC_SMTP_PASSWORD": "p"}).smtp
    assert smtp is not None and (smtp.port, smtp.recipients, smtp.starttls) == (587, ("a@lab.test", "b@lab.test"), True)


@pytest.mark.parametrize(("extra", "named"), [
    ({"DROPSYNC_SMTP_PORT": "smtp"}, "DROPSYNC_SMTP_PORT"),
    ({"DROPSYNC_SMTP_TO": ""}, "DROPSYNC_SMTP_TO"),
    ({"DROPSYNC_SMTP_FROM": "nobody"}, "DROPSYNC_SMTP_FROM"),
    ({"DROPSYNC_SMTP_STARTTLS": "maybe"}, "DROPSYNC_SMTP_STARTTLS"),
    ({"DROPSYNC_SMTP_USER": "u"}, "DROPSYNC_SMTP_PASSWORD"),
    ({"DROPSYNC_ALERT_WEBHOOK_URL": "hooks.slack.com/x"}, "DROPSYNC_ALERT_WEBHOOK_URL"),
    ({"DROPSYNC_STEWARDSHIP_CRON": "daily"}, "DROPSYNC_STEWARDSHIP_CRON"),
])
def test_a_malformed_value_names_its_variable(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        stewardship_from_env({**SMTP, **extra})


def test_the_definitions_refuse_to_load_with_a_malformed_setting() -> None:
    env = {**os.environ, "DROPSYNC_STEWARDSHIP_CRON": "every day"}
    done = subprocess.run([sys.executable, "-c", "import dropsync_dagster.definitions"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "DROPSYNC_STEWARDSHIP_CRON: 'every day' is not a cron expression" in done.stderr


def test_the_smtp_password_is_never_shown() -> None:
    settings = stewardship_from_env({**SMTP, "DROPSYNC_SMTP_USER": "u", "DROPSYNC_SMTP_PASSWORD": "s3cret-pw"})
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)


def test_the_schedule_runs_the_stewardship_job_on_the_configured_cron() -> None:
    env = {**os.environ, "DROPSYNC_STEWARDSHIP_CRON": "30 2 * * 1"}
    shown = subprocess.run([sys.executable, "-c", "from dropsync_dagster.definitions import defs; "
                            "s = defs.resolve_schedule_def('stewardship_schedule'); print(s.job_name, s.cron_schedule)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert shown.stdout.split("\n")[0] == "stewardship 30 2 * * 1", shown.stderr
