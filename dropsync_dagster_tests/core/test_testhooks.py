"""Test hooks: in-process callables and shell commands from DROPSYNC_TEST_HOOKS."""

import json

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


def test_environment_hook_runs_a_shell_command_with_the_context(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv(testhooks.ENV, json.dumps({"x": f'echo "$DROPSYNC_HOOK_NAME $DROPSYNC_HOOK_PATH" > {out}'}))
    testhooks.clear()
    try:
        testhooks.hook("x", path="/a/b")
    finally:
        testhooks.clear()
    assert out.read_text() == "x /a/b\n"
