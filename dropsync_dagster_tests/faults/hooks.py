"""Shell commands for `DROPSYNC_TEST_HOOKS` (core/testhooks.py): what a run does at a named point.

Each command fires once per test (a marker file in the test's `hooks` folder), so a re-run with
the same environment, or the second file reaching a per-file hook, passes through untouched.
`pause` is a rendezvous: the run waits at the hook until the test (World.release) lets it go, so
the test can act from Python at exactly that point (take a server down, start a second run).
"""

from __future__ import annotations

import shlex
from pathlib import Path

KILL = 'kill -KILL "$DROPSYNC_HOOK_PID"'


def once(folder: Path, name: str, command: str, skip: int = 0) -> str:
    """`command` the first time this hook is reached after `skip` passes (per-file hooks count files)."""
    count = shlex.quote(str(folder / f"{name}.count"))
    fired = shlex.quote(str(folder / f"{name}.fired"))
    return (
        f"echo x >> {count}; [ -e {fired} ] && exit 0; [ $(wc -l < {count}) -gt {skip} ] || exit 0; "
        f"touch {fired}; {command}"
    )


def pause(folder: Path, name: str) -> str:
    """Say `<name>.reached`, then wait until `<name>.go` exists (World.wait_at / World.release)."""
    reached = shlex.quote(str(folder / f"{name}.reached"))
    go = shlex.quote(str(folder / f"{name}.go"))
    return f"echo $DROPSYNC_HOOK_PID > {reached}.tmp && mv {reached}.tmp {reached}; while [ ! -e {go} ]; do sleep 0.02; done"


def append(path: Path | str = "$DROPSYNC_HOOK_PATH") -> str:
    """Append bytes to a source (its size, mtime and ctime change; inode and device do not)."""
    return f'printf "appended\\n" >> {_arg(path)}'


def delete(path: Path | str = "$DROPSYNC_HOOK_PATH") -> str:
    """Delete a source."""
    return f"rm -f {_arg(path)}"


def replace(path: Path | str = "$DROPSYNC_HOOK_PATH") -> str:
    """Replace a source by another file of the same size and mtime (only the inode tells)."""
    p = _arg(path)
    return f"tr ACGT TGCA < {p} > {p}.swap && touch -r {p} {p}.swap && mv -f {p}.swap {p}"


def kill_when_read(min_bytes: int) -> str:
    """Watch the hooked process in the background; SIGKILL it once it has read `min_bytes` more."""
    rchar = "$(awk '/^rchar/{print $2}' /proc/$P/io 2>/dev/null || echo 0)"
    return _watch(f"base={rchar}", f'[ $(({rchar} - base)) -ge {min_bytes} ]')


def kill_when_file_grows(folder: Path, pattern: str, min_bytes: int) -> str:
    """Watch in the background; SIGKILL the hooked process once a file named `pattern` under
    `folder` holds at least `min_bytes` (a copy in progress)."""
    found = f"find {shlex.quote(str(folder))} -name {shlex.quote(pattern)} -size +{min_bytes // 1024 - 1}k"
    return _watch(":", f'[ -n "$({found} 2>/dev/null)" ]')


def _watch(setup: str, condition: str) -> str:
    loop = f'P=$DROPSYNC_HOOK_PID; {setup}; while kill -0 $P 2>/dev/null; do if {condition}; then kill -KILL $P; break; fi; sleep 0.002; done'
    return f"( {loop} ) </dev/null >/dev/null 2>&1 &"


def _arg(path: Path | str) -> str:
    text = str(path)
    return f'"{text}"' if text.startswith("$") else shlex.quote(text)
