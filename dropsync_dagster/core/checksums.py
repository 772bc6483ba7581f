"""The `drop_checksums` step: one read per planned file, MD5 sidecars verified, BLAKE3 always."""

from __future__ import annotations

import time
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.hashing import hash_files
from dropsync_dagster.core.model import Plan, PlanEntry, Reason
from dropsync_dagster.core.results import ChecksumsResult, FileChecksum
from dropsync_dagster.core.testhooks import hook
from dropsync_dagster.core.sidecars import flush_filesystems, read_md5_sidecar, read_sidecar, write_sidecar


def compute_checksums(plan: Plan, *, want_md5: bool = False) -> ChecksumsResult:
    """Hash every file that goes ahead; write `<file>.blake3` where no `.md5` sidecar exists.

    `want_md5` computes MD5 for every file (write-back asks for a `Checksum` field).
    """
    entries = [e for e in plan.entries if e.goes_ahead]
    expected_md5 = {e.relpath: read_md5_sidecar(Path(e.source)) for e in entries if e.md5_sidecar}
    jobs = [(Path(e.source), want_md5 or e.relpath in expected_md5) for e in entries]
    started = time.monotonic()
    with progress.task(f"hashing {plan.drop}", sum(e.size for e in entries)) as on_bytes:
        digests = hash_files(jobs, on_bytes=on_bytes)
    files: dict[str, FileChecksum] = {}
    written: list[Path] = []
    for entry in entries:
        d = digests[Path(entry.source)]
        expected = expected_md5.get(entry.relpath)
        files[entry.relpath] = FileChecksum(
            digests=d,
            sidecar="md5" if expected else "blake3",
            reason=_verdict(entry, d.size, d.md5, expected),
            expected_md5=expected,
        )
        source = Path(entry.source)
        if expected is None and files[entry.relpath].reason is None and read_sidecar(source, "blake3") != d.blake3:
            write_sidecar(source, "blake3", d.blake3, source.name, durable=False)
            written.append(source.parent)
    if written:
        flush_filesystems(sorted(set(written)))  # one syncfs for every sidecar, not two fsyncs each
    hook("hashed", drop=plan.drop)
    return ChecksumsResult(
        drop=plan.drop,
        files=files,
        seconds=time.monotonic() - started,
        bytes=sum(f.digests.size for f in files.values()),
    )


def _verdict(entry: PlanEntry, size: int, md5: str | None, expected: str | None) -> Reason | None:
    """md5_mismatch against the sidecar; not_verified when the file changed since planning."""
    if expected is not None and md5 != expected:
        return Reason.MD5_MISMATCH
    if size != entry.size:
        return Reason.NOT_VERIFIED
    return None
