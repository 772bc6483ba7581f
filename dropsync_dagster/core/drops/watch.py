"""What the drop sensor decides on each tick: which drops to register and which to run.

A tick costs one folder walk per known drop (`os.scandir`, one stat per folder, one for its
`sync.yml` and one per file left in the drop — after a sync only held files, sentinels and
sidecars are) and reads a drop's candidate files only when one of its folders or files changed.
Change is judged by ctimes, which no tool can set back (`rsync -t` keeps a source's mtimes, not
its ctimes):

- every known drop has `seen`, the newest ctime seen in its folders, its `sync.yml` and its
  candidate files at the last full look;
- a newer folder ctime means an entry was added, removed or renamed below it: only then are the
  candidates listed, and a run is requested when a candidate is newer than `seen` (a new or
  rewritten file) or `sync.yml` is. Files that went away (our moves of originals) and
  sidecars (never candidates) request nothing, so our own writes never trigger a run;
- a drop whose newest ctime was recent at its last look is *hot* and fully looked at on every
  tick: on a coarse clock an arrival can share `seen`'s timestamp, which only a count tells apart.

A `.md5` sidecar is news too: one that arrives, or is corrected in place, beside a file held
for `md5_mismatch` — or where a quarantined original sat (core/stewardship) — makes the drop run
again. A full look compares each candidate's sidecar and each quarantined original's as well as
the candidates.

A file rewritten in place under its old name changes no folder but its own ctime, which the walk
sees (our own `.blake3` sidecars and temporaries are not looked at). A run that is moving
originals hard-links each before unlinking it; a tick that falls in between sees fresh ctimes
and requests one more run, which finds nothing to do.

The cursor stays small because Dagster stores it with every tick: hot drops live in it, cold
ones in a generation-numbered index file in the state folder that the cursor names, so a tick
whose cursor was not stored is simply decided again from the previous generation.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, load_config
from dropsync_dagster.core.drops.completion import waiting_for_completion
from dropsync_dagster.core.drops.discovery import TEMP_MARKER, DropFolder, Readiness, candidate_files, list_drops, readiness
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.stewardship.quarantine import quarantined

CURSOR_VERSION = 2
HOT_NS = 10 * 10**9  # covers 1-second file-system clocks and a few seconds of skew between hosts
KEEP_INDEXES = 3
NO_BASELINE = -1  # drops taken over from a version-1 cursor: look once, request nothing


@dataclass
class TickPlan:
    """The outcome of one tick: partitions to add, runs to request, problems to report."""

    cursor: dict
    register: list[DropFolder] = field(default_factory=list)
    run: list[DropFolder] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Known:
    """Watermarks of known drops: hot ones `[seen, candidates at seen]`, cold ones `seen`."""

    hot: dict[str, list[int]]
    cold: dict[str, int]

    def forget(self, key: str) -> None:
        self.hot.pop(key, None)
        self.cold.pop(key, None)

    def place(self, key: str, seen: int, at_seen: int, now_ns: int, may_be_hot: bool = True) -> None:
        self.forget(key)
        if may_be_hot and seen >= now_ns - HOT_NS:
            self.hot[key] = [seen, at_seen]
        else:
            self.cold[key] = seen


def tick(settings: Settings, cursor: dict | None, *, budget_s: float = 20.0, now_ns: int | None = None) -> TickPlan:
    """Decide one tick. Until every ready drop found at the start is registered (the first
    tick, or several for a huge backlog), drops are registered without being run."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    deadline = time.monotonic() + budget_s
    state = dict(cursor or {})
    plan = TickPlan(cursor={})
    known, gen, initial = _load(settings, state, plan.problems)
    cold_before = dict(known.cold)
    found = {d.key: d for d in list_drops(settings.drop_roots)}
    for key in [k for k in (*known.hot, *known.cold) if k not in found]:
        known.forget(key)  # the folder is gone; forget it rather than fail
    failed_before: dict[str, str] = state.get("transfer_failed", {})
    failed: dict[str, str] = {}
    broken_before: dict[str, int] = state.get("broken", {})
    broken: dict[str, int] = {}
    complete = True
    for key, drop in found.items():
        if key in known.hot or key in known.cold:
            continue
        if time.monotonic() > deadline:
            complete = False
            break
        ready = readiness(drop.path, settings.ready_files, settings.quiet_seconds)
        if ready is Readiness.TRANSFER_FAILED:
            failed[key] = f"{key}: transfer failed ({drop.path}/.metadata_rsync_exitcode is not 0)"
            if key not in failed_before:  # report once, not on every tick
                plan.problems.append(failed[key])
        elif ready is Readiness.READY and waiting_for_completion(drop.path):
            continue  # a completion file sync.yml names is missing: not ready, looked at again next tick
        elif ready is Readiness.READY:
            if _unchanged_since(drop, broken_before.get(key)):
                broken[key] = broken_before[key]  # still the sync.yml already reported: say nothing
                continue
            problems_before = len(plan.problems)
            looked = _look(drop, None, None, plan.problems, settings.quarantine_dir)
            if looked is None and len(plan.problems) > problems_before:
                try:  # a broken sync.yml: reported now, and again only once the drop changes
                    broken[key] = newest_folder(drop.path)
                except OSError:
                    continue  # vanished or unreadable: looked at (and reported) again next tick
            if looked is not None:
                # Historical drops are never run by the sensor, so none needs watching closely:
                # a backlog of thousands stays out of the cursor and out of the next tick.
                known.place(key, looked[0], looked[1], now_ns, may_be_hot=not initial)
                plan.register.append(drop)
                if not initial:
                    plan.run.append(drop)
    nxt = int(state.get("next", 0))
    if not initial:
        nxt = _watch(known, found, {d.key for d in plan.register}, plan, deadline, nxt, now_ns, settings.quarantine_dir)
    if known.cold != cold_before:
        gen += 1
        _write_index(settings, gen, known.cold)
    plan.cursor = {"v": CURSOR_VERSION, "gen": gen, "init": int(initial and not complete), "next": nxt,
                   "drops": known.hot, "transfer_failed": failed, "broken": broken}
    return plan


def skip_reason(plan: TickPlan, settings: Settings) -> str | None:
    """What a tick that requests no run tells the sensor's tick history (None when it runs drops)."""
    if plan.run:
        return None
    if not settings.drop_roots:
        return ("DROPSYNC_DROP_ROOTS is not set: no drop folder to watch. Set it in the code location's "
                "environment (`make demo` writes the demo's to .env; see README, Deployment settings).")
    said = list(plan.problems)
    if plan.register:
        said.append(f"registered {len(plan.register)} ready drop(s) as partitions without running them "
                    "(drops found on the first tick are historical: materialise or backfill them from the UI)")
    if not said:
        roots = ", ".join(f"{r.name}={r.path}" for r in settings.drop_roots)
        said.append(f"no new or changed ready drop under {roots}")
    return "; ".join(said)


def _unchanged_since(drop: DropFolder, reported: int | None) -> bool:
    """True when a drop whose broken sync.yml was reported at ctime `reported` has not changed."""
    if reported is None:
        return False
    try:
        return newest_folder(drop.path) <= reported
    except OSError:
        return False


def _watch(known: _Known, found: dict[str, DropFolder], skip: set[str], plan: TickPlan, deadline: float,
           start: int, now_ns: int, quarantine: Path | None) -> int:
    """Hot drops get a full look; cold ones a folder walk, round-robin from `start` within the
    budget, and a full look only when a folder changed. Returns where the next tick starts."""
    for key in sorted(k for k in known.hot if k not in skip):
        seen, at_seen = known.hot[key]
        _decide(key, found[key], seen, at_seen, known, plan, now_ns, quarantine)
    keys = sorted(k for k in known.cold if k not in skip)
    checked = 0
    for i in range(len(keys)):
        if time.monotonic() > deadline:
            break
        key = keys[(start + i) % len(keys)]
        checked += 1
        seen = known.cold[key]
        try:
            unchanged = seen != NO_BASELINE and newest_folder(found[key].path) <= seen
        except FileNotFoundError:
            continue  # deleted during the tick: the next tick forgets it
        if not unchanged:
            # Cold: the last look came long after `seen`, so an arrival since is strictly newer.
            _decide(key, found[key], seen, None, known, plan, now_ns, quarantine)
    return (start + checked) % len(keys) if keys else 0


def _decide(key: str, drop: DropFolder, seen: int, at_seen: int | None, known: _Known, plan: TickPlan, now_ns: int,
            quarantine: Path | None) -> None:
    """Full look at a known drop: record what was seen, and request a run if something is new."""
    looked = _look(drop, None if seen == NO_BASELINE else seen, at_seen, plan.problems, quarantine)
    if looked is None:  # broken sync.yml (reported): look again once a folder or sync.yml changes
        try:
            looked = (max(seen, newest_folder(drop.path)), 0, False)
        except FileNotFoundError:
            return
    known.place(key, looked[0], looked[1], now_ns)
    if looked[2]:
        plan.run.append(drop)


def _look(drop: DropFolder, seen: int | None, at_seen: int | None, problems: list[str],
          quarantine: Path | None = None) -> tuple[int, int, bool] | None:
    """(newest ctime, candidates at it, whether anything is new since `seen`), or None with a
    problem when the drop's sync.yml is broken or the drop vanished during the look. A hot drop
    passes `at_seen`, the candidates counted at `seen`: one more at that timestamp is new too."""
    try:
        config = load_config(drop.path / CONFIG_NAME)
        ctimes = []
        for c in candidate_files(drop.path, config.drop_filename_filter):
            ctimes.append(os.lstat(c.source).st_ctime_ns)
            md5 = _ctime_or_none(c.source + ".md5")
            if md5 is not None:
                ctimes.append(md5)
        for q in quarantined(quarantine, drop.key):  # a corrected sidecar where it sat brings it back
            ctimes += [c for s in (".md5", ".blake3") if (c := _ctime_or_none(f"{drop.path / q.note.relpath}{s}"))]
        folders = newest_folder(drop.path)
        rules = os.stat(drop.path / CONFIG_NAME).st_ctime_ns
    except (DropsyncError, OSError) as exc:
        problems.append(f"{drop.key}: {exc}")
        return None
    top = max([seen or 0, folders, *ctimes])
    new = seen is not None and (
        any(c > seen for c in ctimes)
        or (at_seen is not None and sum(c == seen for c in ctimes) > at_seen)
        or (bool(ctimes) and rules > seen)  # sync.yml changed: its files deserve another run
    )
    return top, sum(c == top for c in ctimes), new


def newest_folder(top: Path) -> int:
    """The newest ctime (ns) of the drop folder, its sub-folders and the files left in it (but our
    own `.blake3` sidecars and temporaries)."""
    newest = max(os.stat(top).st_ctime_ns, os.stat(top / CONFIG_NAME).st_ctime_ns)
    stack = [str(top)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_ctime_ns)
                    stack.append(entry.path)
                elif not entry.name.endswith(".blake3") and TEMP_MARKER not in entry.name:
                    # A held file or its sidecar, even rewritten in place (a new ctime, no folder change).
                    newest = max(newest, _entry_ctime(entry))
    return newest


def _entry_ctime(entry: os.DirEntry) -> int:
    """The ctime (ns) of a listed entry; 0 when it went away since it was listed."""
    try:
        return entry.stat(follow_symlinks=False).st_ctime_ns
    except FileNotFoundError:
        return 0


def _ctime_or_none(path: str) -> int | None:
    """The ctime (ns) of `path`, or None when there is nothing there."""
    try:
        return os.lstat(path).st_ctime_ns
    except FileNotFoundError:
        return None


def _load(settings: Settings, state: dict, problems: list[str]) -> tuple[_Known, int, bool]:
    """Known drops from the cursor and its index file; (known, generation, still initial)."""
    if not state:
        return _Known({}, {}), 0, True
    if state.get("v") == 1:  # an older cursor: keep its drops, establish their baselines quietly
        return _Known({}, {k: NO_BASELINE for k in state.get("drops", {})}), 0, False
    gen = int(state.get("gen", 0))
    hot = {k: [int(v[0]), int(v[1])] for k, v in state.get("drops", {}).items()}
    if gen == 0:
        return _Known(hot, {}), gen, bool(state.get("init"))
    try:
        cold = {k: int(v) for k, v in json.loads(_index_path(settings, gen).read_bytes()).items()}
    except FileNotFoundError:
        problems.append(f"sensor index {_index_path(settings, gen)} is missing: registering drops again without running them")
        return _Known({}, {}), gen, True
    return _Known(hot, cold), gen, bool(state.get("init"))


def _index_path(settings: Settings, gen: int) -> Path:
    return settings.state_dir / "sensor" / f"watch-{gen}.json"


def _write_index(settings: Settings, gen: int, cold: dict[str, int]) -> None:
    """Write generation `gen` atomically and drop generations older than the last few."""
    path = _index_path(settings, gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cold, separators=(",", ":")))
    os.replace(tmp, path)
    for old in path.parent.glob("watch-*.json"):
        number = old.stem.removeprefix("watch-")
        if number.isdigit() and int(number) <= gen - KEEP_INDEXES:
            old.unlink(missing_ok=True)
