"""The `encrypted_archive` step: the drop as received, as a new validated generation if needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.archive import archived_members, select_members, write_archive
from dropsync_dagster.core.archive_policy import ArchivePolicy
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ArchiveStepResult, ChecksumsResult


def archive_drop(plan: Plan, checksums: ChecksumsResult, policy: ArchivePolicy,
                 guard: Callable[[], None] | None = None) -> ArchiveStepResult:
    """Archive what earlier generations lack; a disabled archive is recorded with its reason.
    `guard` re-checks the run's claim right before a generation is published."""
    enabled, why = policy.decide(plan.config.archive)
    if not enabled:
        return ArchiveStepResult(drop=plan.drop, enabled=False, why=why)
    planned = {rel for rel, c in checksums.files.items() if c.reason is None}
    drop_dir = Path(plan.drop_path)
    members = select_members(drop_dir, plan.config.archive.tar_exclusions, planned)
    expected = {rel: checksums.files[rel].digests.blake3 for rel in planned}
    total = sum((drop_dir / m).stat().st_size for m in members)
    with progress.task(f"archiving {plan.drop}", total) as on_bytes:
        written = write_archive(
            drop_dir, plan.drop, members, expected, policy.archive_dir, policy.key_dir,
            list(policy.recipients), policy.gnupghome, on_bytes=on_bytes, guard=guard,
        )
    return ArchiveStepResult(
        drop=plan.drop,
        enabled=True,
        why=why,
        written=written.model_dump(),
        archived=archived_members(policy.archive_dir, plan.drop),
    )


def archive_problems(plan: Plan, checksums: ChecksumsResult, result: ArchiveStepResult) -> list[str]:
    """Every file that passed its checksums sits in a validated generation with the same BLAKE3."""
    if not result.enabled:
        return []
    problems = []
    for rel, checksum in checksums.files.items():
        if checksum.reason is not None:
            continue
        got = result.archived.get(rel)
        if got is None:
            problems.append(f"{rel}: in no archive generation")
        elif got != checksum.digests.blake3:
            problems.append(f"{rel}: archived BLAKE3 {got[:12]}… differs from the checksum {checksum.digests.blake3[:12]}…")
    return problems
