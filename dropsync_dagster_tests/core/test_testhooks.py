"""Test hooks: in-process callables and shell commands from DROPSYNC_TEST_HOOKS."""

import json

import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.deployment import hook_commands_from_env
from dropsync_dagster.core import testhooks


def test_in_process_hook_gets_its_context():
    seen = []
    testhooks.install("x", lambda **ctx: seen.append(ctx))
    try:
        testhooks.hook("x", path="/a")
        testhooks.hook("y", path="/b")
    finally:
        testhooks.clear()
    assert seen == [{"path": "/a"}]


def test_command_hook_runs_a_shell_command_with_the_context(tmp_path):
    out = tmp_path / "out"
    testhooks.install_commands({"x": f'echo "$DROPSYNC_HOOK_NAME $DROPSYNC_HOOK_PATH" > {out}'})
    try:
        testhooks.hook("x", path="/a/b")
    finally:
        testhooks.clear()
    assert out.read_text() == "x /a/b\n"


def test_the_deployment_reads_the_hooks_from_their_variable():
    commands = {"published": "kill -KILL $DROPSYNC_HOOK_PID"}
    assert hook_commands_from_env({testhooks.ENV: json.dumps(commands)}) == commands
    assert hook_commands_from_env({}) == {}
    with pytest.raises(ConfigError, match=f"^{testhooks.ENV}: not JSON"):
        hook_commands_from_env({testhooks.ENV: "{oops"})
    with pytest.raises(ConfigError, match=f"^{testhooks.ENV}: expected a JSON object"):
        hook_commands_from_env({testhooks.ENV: '["kill"]'})
