"""The one checker every hostile case goes through: run the real CLI, then check the contract.

For each case (see `Case`), after `arrange` has planted its hostile input:
- the CLI (`dropsync sync DROP --do-it --yes`, or `dropsync plan DROP --json`) runs as a
  subprocess in its own session, killed after `TIMEOUT` seconds (a hang is a failure);
- the exit code is the contract's (0 synced, 1 held, 2 configuration error, 3 failed/refused);
  codes 2 and 3 print exactly one line on stderr; never a traceback, a Python class path or a
  raw terminal escape in any output;
- nothing outside the scratch roots (canary, outside folder, the other drop) is created, changed
  or removed: names, types, modes, owners, sizes, link counts, mtimes, content hashes, link targets;
- a configuration error or refusal changes nothing in the scratch roots either, and `plan` never does;
- every original is still in the drop or in processed, byte-identical; good files are synced
  (moved to processed and a byte-identical copy in the repository) whenever the drop ran;
- held files carry the expected reason (lineage document, or the plan's JSON for `plan`);
- the canary's root-only secret never reaches any output or any file under the scratch roots.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dropsync_dagster.core.status.files import file_id
from dropsync_dagster.core.status.opening import sqlite_store
from dropsync_dagster_tests.hostile.scene import SECRET_TOKEN, Scene
from dropsync_dagster_tests.hostile.snapshot import Snapshot, originals, probe, snapshot

TIMEOUT = 60.0
DROPSYNC = str(Path(sys.executable).with_name("dropsync"))
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
_CLASS_PATH = re.compile(rb"<class '|\b(?:[a-z_][a-z0-9_]*\.)+[A-Z][A-Za-z0-9]*(?:Error|Exception|Warning)\b")

@dataclass(frozen=True)
class Case:
    """One row of the corpus: what is planted, what the contract expects, and why."""

    id: str
    klass: str
    why: str
    arrange: Callable[[Scene], None]
    exit: int | tuple[int, ...]
    held: Mapping[str, str | tuple[str | None, ...]] = field(default_factory=dict)  # relpath -> reason(s); None: not held
    said: tuple[str, ...] = ()  # words the one stderr line must contain (exit 2/3); "a|b": either
    shown: tuple[str, ...] = ()  # words stdout must contain (reasons of things without a file doc)
    command: str = "sync"  # or "plan" (`dropsync plan DROP --json`)
    absent: tuple[str, ...] = ()  # secrets that must appear in no output
    after: Callable[[Scene], list[str]] | None = None  # a case's own extra checks

    @property
    def exits(self) -> tuple[int, ...]:
        return self.exit if isinstance(self.exit, tuple) else (self.exit,)


@dataclass(frozen=True)
class Ran:
    """A finished (or killed) CLI run."""

    code: int | None  # None: killed after TIMEOUT
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class Before:
    """What the checker compares against after the run."""

    outside: Snapshot
    scratch: Snapshot
    originals: dict[str, tuple]


def take_before(scene: Scene) -> Before:
    """Snapshots of everything outside the scratch roots, of the scratch roots, of the originals."""
    return Before(
        outside=snapshot(scene.base, skip=[scene.scratch / "repository", scene.scratch / "processed",
                                           scene.scratch / "state", scene.drop.path, scene.hook_dir]),
        scratch=snapshot(scene.scratch, skip=[scene.scratch / "state"]),
        originals=originals(scene.drop.path),
    )


def run_cli(scene: Scene, case: Case, dagster_home: Path) -> Ran:
    """The real `dropsync` in its own session; the whole session is killed on timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSYNC_")}
    env.update(scene.full_env())
    env["DAGSTER_HOME"] = str(dagster_home)
    if scene.hooks:
        env["DROPSYNC_TEST_HOOKS"] = json.dumps(scene.hooks)
    args = ["sync", str(scene.drop.path), "--do-it", "--yes"] if case.command == "sync" else \
        ["plan", str(scene.drop.path), "--json"]
    cmd = [*(NO_DAC if scene.no_dac else []), DROPSYNC, *args]
    proc = subprocess.Popen(cmd, env=env, cwd=scene.scratch, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        return Ran(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Ran(None, out, err)


def check(case: Case, scene: Scene, before: Before, ran: Ran, outputs: bool = True) -> list[str]:
    """Every contract violation of one run, as short lines (empty: the case passes).
    `outputs=False` for runs without a CLI around them (exit code and streams are not checked)."""
    if ran.code is None:
        return [f"hung: killed after {TIMEOUT:.0f} s; stderr: {_tail(ran.stderr)}"]
    problems = _output_problems(case, ran) if outputs else []
    problems += _diff("outside the roots", before.outside, take_before(scene).outside, scene.nlink_free)
    if case.command == "plan" or set(case.exits) <= {2, 3}:
        problems += _diff("scratch roots (nothing may be done)", before.scratch,
                          snapshot(scene.scratch, skip=[scene.scratch / "state"]), set())
    problems += _originals_problems(scene, before)
    if case.command == "sync" and ran.code in (0, 1) and set(case.exits) & {0, 1}:
        problems += _good_problems(scene)  # `plan` syncs nothing: it changed nothing (checked above)
    problems += _held_problems(case, scene, ran)
    problems += _leak_problems(scene, ran)
    problems += [f"{word!r} echoed on {name}" for word in case.absent
                 for name, text in (("stdout", ran.stdout), ("stderr", ran.stderr)) if word.encode() in text]
    if case.after is not None:
        problems += case.after(scene)
    return problems


def _output_problems(case: Case, ran: Ran) -> list[str]:
    problems = []
    if ran.code not in case.exits:
        problems.append(f"exit {ran.code}, expected {' or '.join(map(str, case.exits))}; stderr: {_tail(ran.stderr)}")
    for name, text in (("stdout", ran.stdout), ("stderr", ran.stderr)):
        if b"Traceback" in text:
            problems.append(f"traceback on {name}: {_tail(text)}")
        if (m := _CLASS_PATH.search(text)) is not None:
            problems.append(f"Python class path on {name}: {m.group().decode(errors='replace')}")
        if b"\x1b" in text:
            problems.append(f"raw terminal escape on {name}")
    if ran.code in (2, 3):
        lines = ran.stderr.decode(errors="replace").splitlines()
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr for exit {ran.code}, expected exactly 1: {_tail(ran.stderr)}")
        for word in case.said:
            if not any(w in ran.stderr.decode(errors="replace") for w in word.split("|")):
                problems.append(f"stderr does not name {word!r}: {_tail(ran.stderr)}")
    return problems


def _diff(where: str, before: Snapshot, after: Snapshot, nlink_free: set[str]) -> list[str]:
    problems = []
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a is None:
            problems.append(f"{where}: created {rel!r}")
        elif b is None:
            problems.append(f"{where}: removed {rel!r}")
        elif a != b and not (rel in nlink_free and a[:4] + a[5:] == b[:4] + b[5:]):
            problems.append(f"{where}: changed {rel!r}: {a} -> {b}")
    return problems


def _originals_problems(scene: Scene, before: Before) -> list[str]:
    problems = []
    processed = scene.scratch / "processed"
    for rel, ident in before.originals.items():
        if rel in scene.vanished:
            continue
        here, there = probe(scene.drop.path, rel), probe(processed, rel)
        if there is None and rel in scene.aside:
            there = probe(processed, scene.aside[rel])
        if rel in scene.mutated:
            ok = here is not None or there is not None
        else:
            ok = ident in (here, there)
        if not ok:
            problems.append(f"original {rel!r} lost or changed: drop {here}, processed {there}")
    return problems


def _good_problems(scene: Scene) -> list[str]:
    problems = []
    repository = {e[-1] for e in snapshot(scene.scratch / "repository").values() if e[0] == stat.S_IFREG}
    for rel in scene.good:
        moved = probe(scene.scratch / "processed", rel)
        if moved is None or moved[0] != stat.S_IFREG:
            problems.append(f"good file {rel!r} not moved to processed")
        elif moved[1] not in repository:
            problems.append(f"good file {rel!r} has no byte-identical repository copy")
        if probe(scene.drop.path, rel) is not None:
            problems.append(f"good file {rel!r} still in the drop")
    return problems


def _held_problems(case: Case, scene: Scene, ran: Ran) -> list[str]:
    problems = []
    if case.held:
        found = _plan_reasons(ran) if case.command == "plan" else _lineage_reasons(scene, case.held)
        for rel, wanted in case.held.items():
            wanted = (wanted,) if isinstance(wanted, str) else wanted
            if found.get(rel) not in wanted:
                problems.append(f"{rel!r} held as {found.get(rel)}, expected {' or '.join(map(str, wanted))}")
    text = ran.stdout.decode(errors="replace")
    problems += [f"stdout does not show {word!r}" for word in case.shown if word not in text]
    return problems


def _plan_reasons(ran: Ran) -> dict[str, str | None]:
    try:
        doc = json.loads(ran.stdout)
    except ValueError:
        return {}
    return {e["relpath"]: e.get("reason") for e in doc.get("entries", [])}


def _lineage_reasons(scene: Scene, rels: Iterable[str]) -> dict[str, str | None]:
    state = scene.scratch / "state"
    if not (state / "status.sqlite3").exists():
        return {}
    store = sqlite_store(state)
    out = {}
    for rel in rels:
        doc = store.get_file(file_id(scene.drop.key, rel))
        out[rel] = doc.model_dump().get("held_reason") if doc is not None else None
    return out


def _leak_problems(scene: Scene, ran: Ran) -> list[str]:
    problems = [f"secret leaked to {name}" for name, text in (("stdout", ran.stdout), ("stderr", ran.stderr))
                if SECRET_TOKEN in text]
    for folder in ("repository", "processed", "state"):
        root = scene.scratch / folder
        if root.exists():
            for dirpath, dirnames, filenames, dirfd in os.fwalk(root):
                for name in [*dirnames, *filenames]:
                    if SECRET_TOKEN.decode() in name:
                        problems.append(f"secret leaked into the name {dirpath}/{name}")
                for name in filenames:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode) and _contains_secret(name, dirfd):
                        problems.append(f"secret leaked into {dirpath}/{name}")
    return problems


def _contains_secret(name: str, dirfd: int) -> bool:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    with open(fd, "rb") as f:
        return SECRET_TOKEN in f.read()


def _tail(text: bytes, limit: int = 400) -> str:
    t = text.decode(errors="replace").strip()
    return t if len(t) <= limit else "…" + t[-limit:]
