"""Named points where a test can act mid-run: kill the process, swap a file, plant a link.

Production never installs a hook, so `hook()` costs one dict lookup. Tests install one either
in-process (`install(name, fn)`) or, for CLI subprocesses and daemon runs, through the
environment: `DROPSYNC_TEST_HOOKS` is a JSON object `{name: shell command}`. The command runs
(and is waited for) with `DROPSYNC_HOOK_NAME`, `DROPSYNC_HOOK_PID` (the process that reached
the hook: `kill -KILL $DROPSYNC_HOOK_PID` is a power cut) and `DROPSYNC_HOOK_<KEY>` for each
context item. Hook names and where they sit are listed in docs/architecture notes of the fault
and hostile suites (dropsync_dagster_tests/faults, dropsync_dagster_tests/hostile).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

ENV = "DROPSYNC_TEST_HOOKS"

_installed: dict[str, Callable[..., None]] = {}
_from_env: dict[str, str] | None = None


def install(name: str, fn: Callable[..., None]) -> None:
    """Run `fn(**context)` each time `hook(name, ...)` is reached in this process."""
    _installed[name] = fn


def clear() -> None:
    """Remove every in-process hook and forget the environment's (re-read on next use)."""
    global _from_env
    _installed.clear()
    _from_env = None


def hook(name: str, **context: Any) -> None:
    """Reached at a named point; does nothing unless a test installed a hook of that name."""
    fn = _installed.get(name)
    if fn is not None:
        fn(**context)
    command = _env_hooks().get(name)
    if command:
        env = {**os.environ, "DROPSYNC_HOOK_NAME": name, "DROPSYNC_HOOK_PID": str(os.getpid())}
        env.update({f"DROPSYNC_HOOK_{k.upper()}": str(v) for k, v in context.items()})
        subprocess.run(["/bin/sh", "-c", command], env=env, check=False)


def _env_hooks() -> dict[str, str]:
    global _from_env
    if _from_env is None:
        raw = os.environ.get(ENV, "")
        _from_env = json.loads(raw) if raw else {}
    return _from_env
