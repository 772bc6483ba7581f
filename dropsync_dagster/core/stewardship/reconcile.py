"""Reconciliation: the repository, the lineage, LabKey, the archive and the drops, compared.

Finds repository files without lineage (under the repository folders the drops' plans name) or
without a LabKey row, LabKey rows naming files that are not there, lineage whose archive member
the members index lacks, and originals neither in the drop nor in the processed folder. Lineage
of every drop counts as lineage (folders are shared); `since` limits the findings to drops whose
status changed since then and to repository files modified since then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from dropsync_dagster.core.archive.generations import ArchiveGeneration, list_generations
from dropsync_dagster.core.drops.discovery import SIDECAR_SUFFIXES, TEMP_MARKER
from dropsync_dagster.core.drops.layout import inside
from dropsync_dagster.core.errors import DropsyncError
from dropsync_dagster.core.labkey.connection import LabKeyConnection
from dropsync_dagster.core.labkey.planning import MakeClient, writeback_connection
from dropsync_dagster.core.labkey.writeback import writeback_configured
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.frozen import current_plan
from dropsync_dagster.core.stewardship.findings import NO_DROP, Finding, FindingKind, Reconciliation
from dropsync_dagster.core.stewardship.labkey_rows import named_paths, rows_missing_for
from dropsync_dagster.core.stewardship.quarantine import QUARANTINED
from dropsync_dagster.core.status.document import DropDoc, DropState
from dropsync_dagster.core.status.files import FileDoc
from dropsync_dagster.core.status.store import StatusStore

MOVED = ("moved", "intended")  # lineage `move` values that place the original in the processed folder


def reconcile(store: StatusStore, state_dir: Path, make_client: MakeClient,
              since: datetime | None = None) -> Reconciliation:
    """Every inconsistency across the drops the store knows (see the module docstring)."""
    drops = [d for d in store.list() if d.status != DropState.PENDING or d.counts]
    out = Reconciliation()
    lineage: dict[str, list[FileDoc]] = {}
    plans: dict[str, Plan] = {}
    for doc in drops:
        plan = current_plan(state_dir, doc.id)
        if plan is None:
            out.skipped.append(f"{doc.id}: never planned")
            continue
        plans[doc.id], lineage[doc.id] = plan, store.drop_files(doc.id)
    targets = {d.target for docs in lineage.values() for d in docs if d.target}
    # A live run publishes copies before it writes their lineage: its planned targets are not strays.
    targets |= {e.target for d in drops if d.status == DropState.PROCESSING and d.id in plans
                for e in plans[d.id].entries if e.target}
    recent = [d for d in drops if d.id in plans and _changed_since(d, since)]
    for doc in recent:
        if doc.status == DropState.PROCESSING:
            out.skipped.append(f"{doc.id}: a run holds it (processing); reconcile it when the run ends")
            continue
        plan, docs = plans[doc.id], lineage[doc.id]
        out.drops, out.files = out.drops + 1, out.files + len(docs)
        out.findings += originals_missing(doc.id, docs) + archive_members_missing(doc.id, docs)
        if writeback_configured(plan.config):
            out.findings += rows_missing_for(plan, docs, make_client)
    out.findings += untracked_files(plans, targets, since)
    out.findings += rows_naming_missing_files([plans[d.id] for d in recent if d.status != DropState.PROCESSING],
                                              lineage, make_client)
    out.findings.sort(key=lambda f: (f.kind.value, f.drop, f.path))
    return out


def _changed_since(doc: DropDoc, since: datetime | None) -> bool:
    return since is None or doc.updated_at is None or doc.updated_at >= since


def originals_missing(drop: str, docs: Sequence[FileDoc]) -> list[Finding]:
    """Originals the lineage names that are neither at their source, at their processed path, nor
    in quarantine."""
    out = []
    for doc in docs:
        if not doc.source or os.path.lexists(doc.source):
            continue
        aside = quarantined_at(doc)
        if any(place and os.path.lexists(place) for place in (doc.processed, aside)):
            continue
        if aside:
            where = f"not in the drop, nor in quarantine at {aside}"
        else:
            where = f"not in the drop, nor at {doc.processed}" if doc.processed else "not in the drop, and never moved"
        out.append(Finding(kind=FindingKind.ORIGINAL_MISSING, drop=drop, path=doc.source, detail=where))
    return out


def quarantined_at(doc: FileDoc) -> str | None:
    """Where the document says its original sits in quarantine (None: it is not quarantined)."""
    aside = getattr(doc, "quarantine", None)
    if isinstance(aside, dict) and aside.get("state") == QUARANTINED:
        return aside.get("path")
    return None


def archive_members_missing(drop: str, docs: Sequence[FileDoc]) -> list[Finding]:
    """Lineage naming an archive generation whose members index (or archive) lacks the file."""
    archived = [d for d in docs if d.archive is not None]
    generations: dict[Path, dict[int, ArchiveGeneration]] = {}
    out = []
    for doc in archived:
        assert doc.archive is not None
        folder = Path(doc.archive.path).parent
        if folder not in generations:
            try:
                generations[folder] = {g.generation: g for g in list_generations(folder, drop)}
            except DropsyncError as exc:  # an unreadable or missing members index: every member is in doubt
                generations[folder] = {}
                out.append(Finding(kind=FindingKind.ARCHIVE_MEMBER_MISSING, drop=drop, path=str(folder), detail=str(exc)))
        gen = generations[folder].get(doc.archive.generation)
        if gen is None or not os.path.exists(gen.archive_path):
            detail = f"generation {doc.archive.generation} ({doc.archive.path}) is not there"
        elif doc.relpath not in gen.members:
            detail = f"the members index of generation {gen.generation} does not list it"
        else:
            continue
        out.append(Finding(kind=FindingKind.ARCHIVE_MEMBER_MISSING, drop=drop, path=doc.relpath, detail=detail))
    return out


def untracked_files(plans: dict[str, Plan], targets: set[str], since: datetime | None) -> list[Finding]:
    """Files under the drops' repository folders that no lineage names (sidecars of targets aside)."""
    folders: dict[Path, list[str]] = {}
    for drop, plan in sorted(plans.items()):
        folders.setdefault(Path(plan.repository_folder), []).append(drop)
    roots = [f for f in folders if not any(other != f and inside(f, other) for other in folders)]
    out = []
    for root in sorted(roots):
        for path in _files_under(root):
            if path in targets or path.endswith(SIDECAR_SUFFIXES) and path.rsplit(".", 1)[0] in targets:
                continue
            if since is not None and os.lstat(path).st_mtime < since.timestamp():
                continue
            owners = next((folders[f] for f in sorted(folders, key=lambda f: -len(f.parts)) if inside(Path(path), f)), [])
            drop = owners[0] if len(owners) == 1 else NO_DROP  # a folder several drops share names none
            out.append(Finding(kind=FindingKind.NO_LINEAGE, drop=drop, path=path, detail="no lineage names it"))
    return out


def rows_naming_missing_files(plans: Sequence[Plan], lineage: dict[str, list[FileDoc]],
                              make_client: MakeClient) -> list[Finding]:
    """LabKey rows (of the drops' tables, under their repository folders) naming files not on disk."""
    owner = {d.target: drop for drop, docs in lineage.items() for d in docs if d.target}
    seen: set[str] = set()
    asked: set[tuple[LabKeyConnection, str]] = set()  # drops sharing a table and a folder: one query
    out = []
    for plan in plans:
        if not writeback_configured(plan.config):
            continue
        question = (writeback_connection(plan.config), plan.repository_folder)
        if question in asked:
            continue
        asked.add(question)
        for path, key in named_paths(plan, make_client).items():
            if path in seen or os.path.lexists(path):
                continue
            seen.add(path)
            out.append(Finding(kind=FindingKind.LABKEY_ROW_MISSING_FILE, drop=owner.get(path, plan.drop), path=path,
                               detail=f"row {key} names it; the file is not there"))
    return out


def _files_under(root: Path) -> Iterator[str]:
    """Every non-folder entry below `root` (links not followed), temporaries of live writers aside."""
    for folder, _, files in os.walk(root):
        for name in files:
            if TEMP_MARKER not in name:
                yield os.path.join(folder, name)
