"""The `encrypted_archive` step: the drop as received, as a new validated generation if needed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.archive.generations import ArchiveResult, archived_members, member_locations, select_members, write_archive
from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.archive.stream import MemberChanged
from dropsync_dagster.core.model import Identity, Plan
from dropsync_dagster.core.integrity.sidecars import SIDECAR_KINDS
from dropsync_dagster.core.results import ArchiveLocation, ArchiveStepResult, ChecksumsResult
from dropsync_dagster.core.drops.reads import identity_of


def archive_drop(plan: Plan, checksums: ChecksumsResult, policy: ArchivePolicy,
                 guard: Callable[[], None] | None = None) -> ArchiveStepResult:
    """Archive what earlier generations lack; a disabled archive is recorded with its reason.
    `guard` re-checks the run's claim right before a generation is published."""
    decision = policy.decide(plan.config.archive)
    if not decision.enabled:
        return ArchiveStepResult(drop=plan.drop, plan_id=plan.plan_id, enabled=False, why=decision.why)
    planned = {rel for rel, c in checksums.files.items() if c.reason is None}
    drop_dir = Path(plan.drop_path)
    # A planned file that is no longer the file that was hashed is held (changed_since_plan), not
    # archived: its bytes are unverified, and without a validated archive its original never moves.
    changed = {rel for rel in planned if not _still_hashed(drop_dir / rel, checksums.files[rel].identity)}
    members = [m for m in select_members(drop_dir, plan.config.archive.tar_exclusions, planned - changed)
               if m not in _with_sidecars(changed)]
    # A member that changes while it is streamed tears the one tar stream it is in, and bytes gpg
    # has taken cannot be taken back: the stream is made once more without it (once; a second
    # change fails the step). Nothing is published from a torn stream.
    for retry in (False, True):
        expected = {rel: checksums.files[rel].digests.blake3 for rel in planned - changed}
        try:
            written = _write(plan, drop_dir, members, expected, policy, guard)
            break
        except MemberChanged as exc:
            if retry:
                raise
            if exc.rel in planned:
                changed.add(exc.rel)
            members = [m for m in members if m != exc.rel and m not in _with_sidecars(changed)]
    return ArchiveStepResult(
        drop=plan.drop,
        plan_id=plan.plan_id,
        enabled=True,
        why=decision.why,
        written=written.model_dump(),
        archived=archived_members(policy.archive_dir, plan.drop),
        changed=sorted(changed),
        locations={rel: ArchiveLocation(path=path, generation=gen)
                   for rel, (path, gen) in member_locations(policy.archive_dir, plan.drop).items()},
    )


def _with_sidecars(rels: set[str]) -> set[str]:
    """`rels` and their sidecars: a sidecar is archived only with the version it describes."""
    return rels | {f"{rel}.{kind}" for rel in rels for kind in SIDECAR_KINDS}


def _still_hashed(path: Path, identity: Identity | None) -> bool:
    """Whether `path` is still the file that was hashed (device, inode, size, mtime)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return identity is None or identity.model_copy(update={"ctime": None}).same_file(identity_of(st))


def _write(plan: Plan, drop_dir: Path, members: list[str], expected: dict[str, str], policy: ArchivePolicy,
           guard: Callable[[], None] | None) -> ArchiveResult:
    total = sum((drop_dir / m).stat().st_size for m in members)
    with progress.task(f"archiving {plan.drop}", total) as on_bytes:
        return write_archive(
            drop_dir, plan.drop, members, expected, policy.archive_dir, policy.key_dir,
            list(policy.recipients), policy.gnupghome, on_bytes=on_bytes, guard=guard,
        )


def archive_problems(plan: Plan, checksums: ChecksumsResult, result: ArchiveStepResult) -> list[str]:
    """Every file that passed its checksums sits in a validated generation with the same BLAKE3."""
    if not result.enabled:
        return []
    problems = []
    for rel, checksum in checksums.files.items():
        if checksum.reason is not None or rel in result.changed:
            continue
        got = result.archived.get(rel)
        if got is None:
            problems.append(f"{rel}: in no archive generation")
        elif got != checksum.digests.blake3:
            problems.append(f"{rel}: archived BLAKE3 {got[:12]}… differs from the checksum {checksum.digests.blake3[:12]}…")
    return problems
