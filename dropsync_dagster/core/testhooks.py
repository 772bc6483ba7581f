"""Named points where a test can act mid-run: kill the process, swap a file, plant a link.

Production never installs a hook, so `hook()` costs one dict lookup. Tests install one either
in-process (`install(name, fn)`) or as shell commands (`install_commands`): for CLI subprocesses
and daemon runs the entry points (the CLI's main, the code location's load) install the commands
of `DROPSYNC_TEST_HOOKS`, a JSON object `{name: shell command}` read by the deployment. The
command runs (and is waited for) with `DROPSYNC_HOOK_NAME`, `DROPSYNC_HOOK_PID` (the process that
reached the hook: `kill -KILL $DROPSYNC_HOOK_PID` is a power cut) and `DROPSYNC_HOOK_<KEY>` for
each context item. Hook names and where they sit are listed in docs/architecture notes of the
fault and hostile suites (dropsync_dagster_tests/faults, dropsync_dagster_tests/hostile).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

ENV = "DROPSYNC_TEST_HOOKS"

_installed: dict[str, Callable[..., None]] = {}
_commands: dict[str, str] = {}


def install(name: str, fn: Callable[..., None]) -> None:
    """Run `fn(**context)` each time `hook(name, ...)` is reached in this process."""
    _installed[name] = fn


def install_commands(commands: Mapping[str, str]) -> None:
    """Run each shell command (by hook name) each time its hook is reached in this process."""
    _commands.update(commands)


def clear() -> None:
    """Remove every hook of this process, callables and commands."""
    _installed.clear()
    _commands.clear()


def hook(name: str, **context: Any) -> None:
    """Reached at a named point; does nothing unless a test installed a hook of that name."""
    fn = _installed.get(name)
    if fn is not None:
        fn(**context)
    command = _commands.get(name)
    if command:
        # The child inherits this process's environment (as any subprocess) plus the hook's context.
        env = {**os.environ, "DROPSYNC_HOOK_NAME": name, "DROPSYNC_HOOK_PID": str(os.getpid())}
        env.update({f"DROPSYNC_HOOK_{k.upper()}": str(v) for k, v in context.items()})
        subprocess.run(["/bin/sh", "-c", command], env=env, check=False)
