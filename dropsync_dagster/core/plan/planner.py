"""The plan: per-file variables, target, gates and reasons, computed once and frozen.

Order of operations per file follows spec/sync-yml.md. Planning is O(n) in files and reads
file contents only for `<hash>` and to compare with a same-size file at a candidate target.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from dropsync_dagster.core.syncyml.regex import compile_bounded
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, SyncConfig
from dropsync_dagster.core.syncyml.reader import read_config_text
from dropsync_dagster.core.drops.discovery import Candidate, DropFolder, candidate_files
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.drops.layout import check_layout
from dropsync_dagster.core.plan.matching import MetadataResult
from dropsync_dagster.core.model import Plan, PlanEntry, Reason, WriteAction
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.core.plan.templating import apply_lookups, apply_replacements, render

_RUN_SLOT = "\0run\0"
_TAKEN, _BLOCKED, _OUTSIDE = -1, -2, -3  # occupants of a target that are never identical content
_CHUNK = 1 << 20


class MetadataMatcher(Protocol):
    """Matches a file's variables to metadata rows (implemented over LabKey/Excel/CSV sources)."""

    def match(self, variables: Mapping[str, str]) -> MetadataResult:
        """Rows for these variables; `reason` set when the file must stop."""


@dataclass(frozen=True)
class Presence:
    """What the presence check found for one file."""

    write_action: WriteAction
    row: dict[str, Any] | None = None
    presence_key: str | None = None
    reason: Reason | None = None


class PresenceChecker(Protocol):
    """Finds each planned file's existing LabKey row, in batches."""

    def check(self, entries: list[PlanEntry], now: datetime) -> dict[str, Presence]:
        """Presence per relpath for the entries that go ahead; `now` is the plan's time (`now()`)."""


@dataclass
class _RunSlots:
    """One rendered `<run>` stem: every number below `free` is planned or taken in the repository."""

    free: int = 1
    # Taken slots holding a regular file, by size, not yet claimed as `already_synced` (ordered).
    taken_by_size: dict[int, dict[int, None]] = field(default_factory=dict)


@dataclass
class _Targets:
    """Targets planned so far and the `<run>` slots seen per rendered stem."""

    planned: set[str] = field(default_factory=set)
    stems: dict[str, _RunSlots] = field(default_factory=dict)
    inside: dict[str, bool] = field(default_factory=dict)  # target folder -> resolves inside


def make_plan(
    drop: DropFolder,
    config: SyncConfig,
    settings: Settings,
    *,
    now: datetime | None = None,
    metadata: MetadataMatcher | None = None,
    presence: PresenceChecker | None = None,
) -> Plan:
    """Plan every candidate file of `drop`; changes nothing on disk."""
    now = now or datetime.now(timezone.utc)
    repository = _folder(settings, drop.path, config.repository_folder, "repository_folder")
    processed = _folder(settings, drop.path, config.processed_folder, "processed_folder")
    check_layout(drop.path, [r.path for r in settings.drop_roots], repository, processed, settings.quarantine_dir)
    rebase = Path(os.path.realpath(drop.path / (config.processed_rebase_from or ".")))
    if rebase != drop.path.resolve() and rebase not in drop.path.resolve().parents:
        raise ConfigError(f"processed_rebase_from: {rebase} does not contain the drop folder {drop.path}")
    # The walk never enters symlinked folders, so a file's real folder is the real drop + relpath.
    processed_prefix = os.path.join(processed, os.path.relpath(drop.path.resolve(), rebase))
    today = now.strftime("%Y-%m-%d")
    targets = _Targets()
    regex = compile_bounded(config.drop_filename_regex, f"{drop.path / CONFIG_NAME}: drop_filename_regex")
    entries: list[PlanEntry] = []
    for cand in candidate_files(drop.path, config.drop_filename_filter):
        entry = dict(
            relpath=cand.relpath, source=cand.source, size=cand.size, mtime=cand.mtime,
            device=cand.device, inode=cand.inode, ctime=cand.ctime,
        )
        match = regex.match(cand.relpath)
        # A folder that cannot be listed (unreadable, or its path over PATH_MAX) may hold matching
        # files: it holds the drop back.
        entry["matched"] = match is not None or cand.folder or cand.held is Reason.UNREADABLE
        entry["processed"] = os.path.normpath(os.path.join(processed_prefix, cand.relpath))
        entry["processed_taken"] = os.path.lexists(entry["processed"])
        md5_path = f"{entry['source']}.md5"
        # Any entry there, regular or not: drop_checksums reads it safely or holds `bad_sidecar`.
        entry["md5_sidecar"] = md5_path if os.path.lexists(md5_path) else None
        if not entry["matched"]:
            entries.append(PlanEntry(**entry, reason=Reason.SKIPPED_NON_MATCH))
            continue
        if cand.held is not None:
            entries.append(PlanEntry(**entry, reason=cand.held))
            continue
        try:
            entries.append(_plan_file(entry, match.groupdict(), cand, config, metadata, repository, today, targets))
        except OSError:  # reading it for `<hash>` or to compare with a target failed
            entries.append(PlanEntry(**entry, reason=Reason.UNREADABLE))
    if presence is not None:
        entries = _apply_presence(entries, presence, now)
    return Plan(
        drop=drop.key,
        drop_path=str(drop.path),
        repository_folder=str(repository),
        processed_folder=str(processed),
        created_at=now.isoformat(),
        today=today,
        entries=entries,
        config_sha256=hashlib.sha256(read_config_text(drop.path / CONFIG_NAME).encode()).hexdigest(),
        config=config,
        labkey_configured=config.labkey is not None,
    )


def _folder(settings: Settings, drop_path: Path, value: str, key: str) -> Path:
    """A sync.yml folder: relative paths are relative to the drop folder; must be allowed.
    The plan carries the checked real paths, so the write steps use the folders checked here."""
    return settings.check_allowed(drop_path / value, key)


def _plan_file(
    entry: dict[str, Any],
    groups: dict[str, str | None],
    cand: Candidate,
    config: SyncConfig,
    metadata: MetadataMatcher | None,
    repository: Path,
    today: str,
    targets: _Targets,
) -> PlanEntry:
    """Steps 1-5 of the order of operations for one matched file."""
    rules = config.replacements.before_match
    variables = {k: v or "" for k, v in groups.items()}
    variables = apply_lookups(apply_replacements(variables, rules, "var"), config.lookups)
    if metadata is not None:
        found = metadata.match(variables)
        entry["metadata"] = found.rows
        if found.reason is not None:
            return PlanEntry(**entry, variables=variables, reason=found.reason)
        derived = {k: v for k, v in found.derived.items() if k not in variables}
        variables.update(apply_replacements(derived, rules, "var"))
    variables["today"] = today
    if config.filename_sequence == "hash":
        variables["hash"] = f"{_crc32(cand.source):08X}"
    target_rel, reason = _choose_target(config, variables, entry.get("metadata", {}), cand, repository, targets)
    if config.filename_sequence == "run" and target_rel is not None and reason is not Reason.UNSAFE_PATH:
        variables["run"] = target_rel[1]
    rel = target_rel[0] if target_rel else None
    return PlanEntry(
        **entry,
        variables=variables,
        target_relpath=rel,
        target=os.path.join(repository, rel) if rel and reason is not Reason.UNSAFE_PATH else None,
        reason=reason,
    )


def _choose_target(
    config: SyncConfig,
    variables: dict[str, str],
    rows: dict[str, dict[str, Any]],
    cand: Candidate,
    repository: Path,
    targets: _Targets,
) -> tuple[tuple[str, str] | None, Reason | None]:
    """Render the target; with `<run>`, the smallest number free in the plan and the repository."""
    stem = render(config.repository_filename, {**variables, "run": _RUN_SLOT}, rows)
    if not _lexically_safe(stem.replace(_RUN_SLOT, "1")):
        return (stem.replace(_RUN_SLOT, "1"), ""), Reason.UNSAFE_PATH
    if _RUN_SLOT in stem and config.filename_sequence == "run":
        rel, n, reason = _choose_run(stem, cand, repository, targets)
        return (rel, str(n)), reason
    # One candidate target (also `filename_sequence: run` without `<run>` in the template).
    number = "1" if config.filename_sequence == "run" else ""
    if stem in targets.planned:
        return (stem, number), Reason.TARGET_CONFLICT
    size = _occupant(repository, stem) if _inside(repository, os.path.dirname(stem), targets) else _OUTSIDE
    if size == _OUTSIDE:
        return (stem, number), Reason.UNSAFE_PATH
    targets.planned.add(stem)
    if size is None:
        return (stem, number), None
    same = size == cand.size and _same_content(os.path.join(repository, stem), cand.source)
    return (stem, number), Reason.ALREADY_SYNCED if same else Reason.TARGET_CONFLICT


def _choose_run(stem: str, cand: Candidate, repository: Path, targets: _Targets) -> tuple[str, int, Reason | None]:
    """Identical content at a taken slot below the first free one is `already_synced` there;
    otherwise the first free slot. Each slot is probed once per plan, so planning stays linear."""
    fixed = stem.split(_RUN_SLOT)[0]
    if not _inside(repository, os.path.dirname(fixed), targets):
        return stem.replace(_RUN_SLOT, "1"), 1, Reason.UNSAFE_PATH
    slots = targets.stems.setdefault(stem, _RunSlots())
    while True:
        rel = stem.replace(_RUN_SLOT, str(slots.free))
        # A slot whose folder links out of the repository stays taken: never read, never written.
        if rel not in targets.planned and _inside(repository, os.path.dirname(rel), targets):
            size = _occupant(repository, rel, fixed)
            if size is None:
                break
            if size == _BLOCKED:
                return rel, slots.free, Reason.TARGET_CONFLICT  # no number can ever free this target
            if size >= 0:
                slots.taken_by_size.setdefault(size, {})[slots.free] = None
        slots.free += 1
    same_size = slots.taken_by_size.get(cand.size, {})
    for n in same_size:  # ascending: slots are recorded in the order they are probed
        if _same_content(os.path.join(repository, stem.replace(_RUN_SLOT, str(n))), cand.source):
            del same_size[n]
            targets.planned.add(stem.replace(_RUN_SLOT, str(n)))
            return stem.replace(_RUN_SLOT, str(n)), n, Reason.ALREADY_SYNCED
    n, rel = slots.free, stem.replace(_RUN_SLOT, str(slots.free))
    targets.planned.add(rel)
    slots.free += 1
    return rel, n, None


def _lexically_safe(rel: str) -> bool:
    """A target must be relative, free of `..` components and NUL bytes (a metadata value may
    carry one), and name a file, not a folder."""
    parts = rel.replace("\\", "/").split("/")
    return bool(rel) and "\0" not in rel and not os.path.isabs(rel) and ".." not in parts and parts[-1] not in ("", ".")


def _inside(repository: Path, folder: str, targets: _Targets) -> bool:
    """Whether a target folder resolves inside the repository (links there must not lead out).
    Cached per folder: planning writes nothing, and realpath per file was the planner's hot spot."""
    inside = targets.inside.get(folder)
    if inside is None:
        real = os.path.realpath(os.path.join(repository, folder))
        inside = targets.inside[folder] = real == str(repository) or real.startswith(str(repository) + os.sep)
    return inside


def _occupant(repository: Path, rel: str, fixed: str = "") -> int | None:
    """None: nothing at `rel` (whose folder resolves inside); else the size of a regular file,
    _TAKEN (a folder, a dangling link), _OUTSIDE (a link out: never read), or _BLOCKED (a file
    sits where a folder of `fixed` must be)."""
    path = os.path.join(repository, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return _BLOCKED if _blocked(repository, fixed) else _TAKEN
    if stat.S_ISLNK(st.st_mode):
        if not os.path.realpath(path).startswith(str(repository) + os.sep):
            return _OUTSIDE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return _TAKEN  # a dangling link still occupies the name
    return st.st_size if stat.S_ISREG(st.st_mode) else _TAKEN


def _blocked(repository: Path, prefix: str) -> bool:
    """True when a non-folder sits where a folder of `prefix` must be."""
    folder = repository / os.path.dirname(prefix)
    while folder != repository and not os.path.lexists(folder):
        folder = folder.parent
    return os.path.lexists(folder) and not folder.is_dir()


def _same_content(a: str | Path, b: str | Path) -> bool:
    """Byte comparison that stops at the first difference."""
    with open(a, "rb") as fa, open(b, "rb", opener=_source_opener) as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def _source_opener(path: str, flags: int) -> int:
    """Sources are read without following a link or blocking on a FIFO swapped in meanwhile."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb", opener=_source_opener) as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _apply_presence(entries: list[PlanEntry], presence: PresenceChecker, now: datetime) -> list[PlanEntry]:
    """Annotate write actions; `writeback_skipped` and presence-key collisions stop files."""
    found = presence.check([e for e in entries if e.goes_ahead], now)
    out = []
    for e in entries:
        p = found.get(e.relpath)
        if p is None:
            out.append(e)
            continue
        update: dict[str, Any] = {"write_action": p.write_action, "labkey_row": p.row, "presence_key": p.presence_key}
        if p.reason is not None:
            update["reason"] = p.reason
        out.append(e.model_copy(update=update))
    return out
