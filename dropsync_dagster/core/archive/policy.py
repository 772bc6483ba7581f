"""Whether a drop is archived: the deployment's recipients and requirement against its sync.yml."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dropsync_dagster.core.errors import ConfigError

if TYPE_CHECKING:
    from dropsync_dagster.core.syncyml.schema import ArchiveSection


class ArchiveDecision(NamedTuple):
    """Whether one drop is archived, and why, in words for its metadata."""

    enabled: bool
    why: str


@dataclass(frozen=True)
class ArchivePolicy:
    """Deployment-level archive settings (DROPSYNC_GPG_RECIPIENTS, _ARCHIVE_DIR, _KEY_DIR, ...)."""

    recipients: tuple[str, ...]
    archive_dir: Path
    key_dir: Path
    required: bool
    gnupghome: str | None = None

    @classmethod
    def configured(
        cls, state_dir: Path, recipients: Sequence[str], archive_dir: str | None, key_dir: str | None,
        require: bool | None, gnupghome: str | None,
    ) -> ArchivePolicy:
        """The policy; required defaults to on whenever recipients are configured (None: unset)."""
        names = tuple(r.strip() for r in recipients if r.strip())
        required = bool(names) if require is None else require
        if required and not names:
            raise ConfigError("DROPSYNC_REQUIRE_ARCHIVE is on but DROPSYNC_GPG_RECIPIENTS names no recipient")
        return cls(
            recipients=names,
            archive_dir=Path(archive_dir) if archive_dir else state_dir / "archive",
            key_dir=Path(key_dir) if key_dir else state_dir / "keys",
            required=required,
            gnupghome=gnupghome or None,
        )

    def decide(self, section: ArchiveSection) -> ArchiveDecision:
        """Whether a drop whose sync.yml has this `archive` section is archived, and why."""
        if self.required:
            if not section.enabled:
                return ArchiveDecision(True, "required by DROPSYNC_REQUIRE_ARCHIVE "
                                             "(sync.yml's archive.enabled: false is overridden)")
            return ArchiveDecision(True, "required by DROPSYNC_REQUIRE_ARCHIVE")
        if not self.recipients:
            return ArchiveDecision(False, "disabled: DROPSYNC_GPG_RECIPIENTS is not set")
        if not section.enabled:
            return ArchiveDecision(False, "disabled by sync.yml (archive.enabled: false)")
        return ArchiveDecision(True, "enabled")
