"""The `drop_checksums` step: one read per planned file, MD5 sidecars verified, BLAKE3 always."""

from __future__ import annotations

import errno
import time
from pathlib import Path

from dropsync_dagster.core import progress
from dropsync_dagster.core.fs.confined import Folders
from dropsync_dagster.core.errors import UnsafePathError
from dropsync_dagster.core.integrity.hashing import Hashed, hash_sources
from dropsync_dagster.core.model import Plan, PlanEntry, Reason
from dropsync_dagster.core.results import ChecksumsResult, FileChecksum
from dropsync_dagster.core.integrity.sidecars import BadSidecar, read_sidecar, write_sidecar
from dropsync_dagster.core.fs.staging import flush_folder_fds, sweep
from dropsync_dagster.core.testhooks import hook


def compute_checksums(plan: Plan, *, want_md5: bool = False) -> ChecksumsResult:
    """Hash every file that goes ahead; write `<file>.blake3` where no `.md5` sidecar exists.
    A file that is not the planned one, or whose sidecar is bad, is held; the others go on.

    `want_md5` computes MD5 for every file (write-back asks for a `Checksum` field).
    """
    entries = [e for e in plan.entries if e.goes_ahead]
    files: dict[str, FileChecksum] = {}
    sidecars: dict[str, tuple[str | None, str | None]] = {}  # relpath -> (md5, blake3) found
    for e in entries:
        try:
            md5 = read_sidecar(Path(e.source), "md5") if e.md5_sidecar else None
            sidecars[e.relpath] = (md5, read_sidecar(Path(e.source), "blake3"))
        except BadSidecar:
            files[e.relpath] = FileChecksum(digests=None, sidecar="md5" if e.md5_sidecar else "blake3", reason=Reason.BAD_SIDECAR)
    todo = [e for e in entries if e.relpath in sidecars]
    jobs = [(Path(e.source), want_md5 or sidecars[e.relpath][0] is not None, e.identity) for e in todo]
    started = time.monotonic()
    with progress.task(f"hashing {plan.drop}", sum(e.size for e in todo)) as on_bytes:
        hashed = hash_sources(jobs, on_bytes=on_bytes)
    with Folders() as folders:
        written: set[int] = set()
        _sweep(plan, todo, folders)
        for entry in todo:
            md5, blake3 = sidecars[entry.relpath]
            files[entry.relpath] = checksum = _checksum(entry, hashed[Path(entry.source)], md5)
            if md5 is None and checksum.reason is None and blake3 != checksum.digests.blake3:
                reason = _write_blake3(plan, entry, checksum.digests.blake3, folders, written)
                if reason is not None:
                    files[entry.relpath] = checksum.model_copy(update={"reason": reason})
        if written:
            flush_folder_fds(written)  # one syncfs for every sidecar, not two fsyncs each
    hook("hashed", drop=plan.drop)
    return ChecksumsResult(
        drop=plan.drop,
        plan_id=plan.plan_id,
        files=files,
        seconds=time.monotonic() - started,
        bytes=sum(f.digests.size for f in files.values() if f.digests is not None),
    )


def _checksum(entry: PlanEntry, hashed: Hashed, md5: str | None) -> FileChecksum:
    kind = "md5" if md5 else "blake3"
    if hashed.digests is None:
        return FileChecksum(digests=None, sidecar=kind, reason=hashed.reason, expected_md5=md5)
    return FileChecksum(
        digests=hashed.digests, sidecar=kind, identity=hashed.identity, expected_md5=md5,
        reason=_verdict(entry, hashed.digests.size, hashed.digests.md5, md5),
    )


def _write_blake3(plan: Plan, entry: PlanEntry, digest: str, folders: Folders, written: set[int]) -> Reason | None:
    """Write `<source>.blake3` in the drop, through the source's folder opened under the drop;
    why the file is held when that is impossible."""
    source = Path(entry.source)
    try:
        folder = folders.get(Path(plan.drop_path), source.parent)
    except UnsafePathError:
        return Reason.UNSAFE_PATH  # a folder of the drop became a link since planning
    try:
        write_sidecar(source, "blake3", digest, source.name, durable=False, folder_fd=folder)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return Reason.BAD_NAME
        raise
    written.add(folder)
    return None


def _sweep(plan: Plan, entries: list[PlanEntry], folders: Folders) -> None:
    """Remove temporaries of dead writers from the drop folders this step may write sidecars in."""
    for folder in sorted({Path(e.source).parent for e in entries}):
        try:
            sweep(folders.get(Path(plan.drop_path), folder))
        except UnsafePathError:
            continue  # held when (if) a sidecar is to be written there


def _verdict(entry: PlanEntry, size: int, md5: str | None, expected: str | None) -> Reason | None:
    """md5_mismatch against the sidecar; not_verified when the file changed since planning."""
    if expected is not None and md5 != expected:
        return Reason.MD5_MISMATCH
    if size != entry.size:
        return Reason.NOT_VERIFIED
    return None
