"""Fixity audits: re-read a drop's repository copies (and, asked, its archive generations) from
the disk and compare them with the digests its lineage recorded; record when and what was found."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from dropsync_dagster.core.archive.generations import ArchiveGeneration, list_generations
from dropsync_dagster.core.archive.gpg import find_gpg, unwrap_key
from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.errors import ConfigError, IntegrityError
from dropsync_dagster.core.integrity.hashing import hash_fd
from dropsync_dagster.core.stewardship.decryption import drop_cached, open_uncached, read_generation
from dropsync_dagster.core.status.files import FileDoc, FileDocuments, Fixity

Outcome = Literal["differs", "missing", "unreadable", "damaged", "unexpected"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Finding(BaseModel):
    """One copy that no longer matches its lineage: which file, where, and how it differs."""

    drop: str
    relpath: str
    where: Literal["repository", "archive"]
    outcome: Outcome
    path: str
    detail: str

    def line(self) -> str:
        """One line naming the file, for people and the UI."""
        return f"{self.outcome.upper()} {self.drop}: {self.relpath} ({self.where} {self.path}): {self.detail}"


class DropAudit(BaseModel):
    """What one audit of a drop read and found; it passed when `findings` is empty."""

    drop: str
    seed: int
    repository_files: int = 0  # repository copies re-read
    repository_total: int = 0  # repository copies the lineage records
    generations: list[int] = []  # archive generations decrypted
    archive_members: int = 0
    findings: list[Finding] = []

    def found(self, where: str) -> list[Finding]:
        """The findings about one kind of copy: `repository` or `archive`."""
        return [f for f in self.findings if f.where == where]


def parse_fraction(text: str | float, name: str) -> float:
    """A sample fraction in (0, 1]; anything else is a ConfigError naming the setting."""
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a fraction in (0, 1], got {text!r}") from exc
    if not 0 < value <= 1:
        raise ConfigError(f"{name}: expected a fraction in (0, 1], got {text!r}")
    return value


def audit_drop(store: FileDocuments, drop: str, *, sample: float = 1.0, seed: int = 0,
               archives: ArchivePolicy | None = None) -> DropAudit:
    """Audit one drop: re-read a sample of its repository copies (least recently verified first),
    and with `archives` a sample of its archive generations; record the outcome per file."""
    docs = store.drop_files(drop)
    copies = [d for d in docs if d.target]
    chosen = _sample(copies, sample, seed, key=lambda d: d.verified_at or EPOCH)
    audit = DropAudit(drop=drop, seed=seed, repository_files=len(chosen), repository_total=len(copies))
    now = datetime.now(UTC)
    updates: list[FileDoc] = []
    for doc in chosen:
        finding = reread_copy(drop, doc)
        if finding is not None:
            audit.findings.append(finding)
        updates.append(FileDoc(relpath=doc.relpath, verified_at=now, fixity={"repository": _fixity(finding, now)}))
    if archives is not None:
        updates += _audit_archives(audit, docs, archives, sample, seed, now)
    if updates:
        store.put_files(drop, updates)
    return audit


def reread_copy(drop: str, doc: FileDoc) -> Finding | None:
    """Re-read one repository copy from the disk; a Finding when it is gone or differs."""
    expected = doc.checksums.get("repository", {}).get("blake3") or doc.checksums.get("source", {}).get("blake3")
    md5 = doc.checksums.get("source", {}).get("md5")
    path = Path(doc.target or "")

    def found(outcome: Outcome, detail: str) -> Finding:
        return Finding(drop=drop, relpath=doc.relpath, where="repository", outcome=outcome, path=str(path), detail=detail)

    if not expected:
        return found("unreadable", "its lineage records no BLAKE3 to compare with")
    try:
        fd = open_uncached(path)
    except FileNotFoundError:
        return found("missing", "the repository copy is gone")
    except OSError as exc:
        return found("unreadable", f"cannot open it: {exc.strerror or exc}")
    try:
        digests = hash_fd(fd, md5 is not None, None, path)
    except IntegrityError as exc:
        return found("unreadable", str(exc))
    finally:
        drop_cached(fd)  # an audit must not fill the cache with the repository
        os.close(fd)
    if digests.blake3 != expected:
        return found("differs", f"BLAKE3 {digests.blake3[:16]}… but the lineage records {expected[:16]}…")
    if md5 is not None and digests.md5 != md5:
        return found("differs", f"MD5 {digests.md5} but the lineage records {md5}")
    return None


def _audit_archives(audit: DropAudit, docs: list[FileDoc], policy: ArchivePolicy, sample: float, seed: int,
                    now: datetime) -> list[FileDoc]:
    """Decrypt a sample of the drop's generations, compare every member with the members index
    and each archived file with its lineage; lineage naming a generation that is gone is missing."""
    generations = {g.generation: g for g in list_generations(policy.archive_dir, audit.drop)}
    updates: list[FileDoc] = []
    for doc in docs:
        if doc.archive is not None and doc.archive.generation not in generations:
            finding = Finding(drop=audit.drop, relpath=doc.relpath, where="archive", outcome="missing",
                              path=doc.archive.path, detail=f"archive generation {doc.archive.generation} is gone")
            audit.findings.append(finding)
            updates.append(FileDoc(relpath=doc.relpath, fixity={"archive": _fixity(finding, now)}))
    for gen in _sample(list(generations.values()), sample, seed, key=lambda g: 0):
        audit.generations.append(gen.generation)
        found = _audit_generation(audit.drop, gen, [d for d in docs if d.archive and d.archive.generation == gen.generation],
                                  policy)
        audit.archive_members += len(gen.members)
        audit.findings += found
        named = {f.relpath: f for f in found}
        updates += [FileDoc(relpath=d.relpath, fixity={"archive": _fixity(named.get(d.relpath), now)})
                    for d in docs if d.archive and d.archive.generation == gen.generation]
    audit.generations.sort()
    return updates


def _audit_generation(drop: str, gen: ArchiveGeneration, lineage: Sequence[FileDoc], policy: ArchivePolicy) -> list[Finding]:
    archive, key = Path(gen.archive_path), Path(gen.key_path)

    def found(rel: str, outcome: Outcome, detail: str) -> Finding:
        return Finding(drop=drop, relpath=rel, where="archive", outcome=outcome, path=str(archive), detail=detail)

    if not key.exists():
        return [found(f"g{gen.generation}", "missing", f"its wrapped key {key} is gone: nobody can decrypt it")]
    read = read_generation(archive, unwrap_key(key, policy.gnupghome), find_gpg(policy.gnupghome))
    findings = [] if read.problem is None else [found(f"g{gen.generation}", "damaged", read.problem)]
    for rel, indexed in sorted(gen.members.items()):
        got = read.members.get(rel)
        if got is None:
            findings.append(found(rel, "missing", f"not in the decrypted archive generation {gen.generation}"))
        elif got != indexed:
            findings.append(found(rel, "differs", f"decrypted BLAKE3 {got.blake3[:16]}… (size {got.size}) but the "
                                                  f"members index records {indexed.blake3[:16]}… (size {indexed.size})"))
    findings += [found(rel, "unexpected", "in the archive but not in its members index")
                 for rel in sorted(set(read.members) - set(gen.members))]
    for doc in lineage:
        recorded = doc.checksums.get("archive", {}).get("blake3") or doc.checksums.get("source", {}).get("blake3")
        indexed = gen.members.get(doc.relpath)
        if indexed is not None and recorded and indexed.blake3 != recorded:
            findings.append(found(doc.relpath, "differs", f"members index records {indexed.blake3[:16]}… but the "
                                                          f"lineage records {recorded[:16]}…"))
    return findings


def _sample(items: list, fraction: float, seed: int, key) -> list:
    """`fraction` of `items` (at least one), the lowest `key` first, ties in an order fixed by `seed`."""
    if fraction >= 1 or not items:
        return items
    rng = random.Random(seed)
    ranked = sorted(((key(item), rng.random(), n) for n, item in enumerate(items)))
    return [items[n] for _, _, n in ranked[: max(1, math.ceil(fraction * len(items)))]]


def _fixity(finding: Finding | None, now: datetime) -> Fixity:
    if finding is None:
        return Fixity(outcome="match", at=now)
    return Fixity(outcome=finding.outcome, at=now, detail=finding.detail)
