"""Reconcile and quarantine: an original in quarantine is accounted for, not reported missing."""

from __future__ import annotations

from pathlib import Path

from dropsync_dagster.core.status.files import FileDoc
from dropsync_dagster.core.stewardship.findings import FindingKind
from dropsync_dagster.core.stewardship.quarantine import QUARANTINED
from dropsync_dagster.core.stewardship.reconcile import originals_missing


def original(tmp_path: Path, quarantined_at: Path | None) -> FileDoc:
    """A held original gone from its drop; its document names a quarantine place when given."""
    extra = {} if quarantined_at is None else {"quarantine": {"state": QUARANTINED, "path": str(quarantined_at)}}
    return FileDoc(relpath="a.fastq.gz", source=str(tmp_path / "drop/a.fastq.gz"), **extra)


def test_an_original_in_quarantine_is_not_missing(tmp_path: Path) -> None:
    place = tmp_path / "quarantine/seq-drop/a.fastq.gz"
    place.parent.mkdir(parents=True)
    place.write_bytes(b"held")
    assert originals_missing("seq-drop", [original(tmp_path, place)]) == []


def test_an_original_gone_from_quarantine_too_is_missing(tmp_path: Path) -> None:
    (found,) = originals_missing("seq-drop", [original(tmp_path, tmp_path / "quarantine/seq-drop/a.fastq.gz")])
    assert found.kind == FindingKind.ORIGINAL_MISSING and "quarantine" in found.detail
    (never,) = originals_missing("seq-drop", [original(tmp_path, None)])
    assert never.kind == FindingKind.ORIGINAL_MISSING
