"""What reconciliation finds: one finding per inconsistency, named by kind, drop and path."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

NO_DROP = "-"  # a repository file no drop's lineage or folder claims


class FindingKind(StrEnum):
    """The inconsistencies between the repository, the lineage, LabKey, the archive and the drops."""

    NO_LINEAGE = "no_lineage"  # a repository file no lineage document names as its target
    NO_LABKEY_ROW = "no_labkey_row"  # a repository file with lineage but no LabKey row holding it
    LABKEY_ROW_MISSING_FILE = "labkey_row_missing_file"  # a LabKey row names a file that is not there
    ARCHIVE_MEMBER_MISSING = "archive_member_missing"  # lineage says archived; the members index disagrees
    ORIGINAL_MISSING = "original_missing"  # an original neither in the drop nor in the processed folder


class Finding(BaseModel):
    """One inconsistency; `detail` says what was expected, in one line."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    drop: str
    path: str
    detail: str = ""

    def line(self) -> str:
        """`kind<TAB>drop<TAB>path<TAB>detail`: one line per finding, for people and grep."""
        return "\t".join((self.kind.value, self.drop, self.path, self.detail))


class Reconciliation(BaseModel):
    """Every finding of one reconciliation, and how many drops and files it looked at."""

    drops: int = 0
    files: int = 0
    skipped: list[str] = []  # drops not reconciled, each with why (e.g. a run holds it)
    findings: list[Finding] = []

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def counts(self) -> dict[str, int]:
        """Findings per kind, every kind present (zeros included)."""
        return {kind.value: sum(f.kind is kind for f in self.findings) for kind in FindingKind}
