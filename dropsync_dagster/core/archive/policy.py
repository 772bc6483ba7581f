"""Whether a drop is archived: the deployment's recipients and requirement against its sync.yml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dropsync_dagster.core.syncyml.schema import ArchiveSection
from dropsync_dagster.core.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ArchivePolicy:
    """Deployment-level archive settings (DROPSYNC_GPG_RECIPIENTS, _ARCHIVE_DIR, _KEY_DIR, ...)."""

    recipients: tuple[str, ...]
    archive_dir: Path
    key_dir: Path
    required: bool
    gnupghome: str | None = None

    @classmethod
    def from_values(
        cls, state_dir: Path, recipients: str | None, archive_dir: str | None, key_dir: str | None,
        require: str | None, gnupghome: str | None,
    ) -> ArchivePolicy:
        """Parse the settings; the requirement defaults to on whenever recipients are configured."""
        names = tuple(r.strip() for r in (recipients or "").split(",") if r.strip())
        text = (require or "").strip().lower()
        if text and text not in _TRUE | _FALSE:
            raise ConfigError(f"DROPSYNC_REQUIRE_ARCHIVE: expected true/false, got {require!r}")
        required = text in _TRUE if text else bool(names)
        if required and not names:
            raise ConfigError("DROPSYNC_REQUIRE_ARCHIVE is on but DROPSYNC_GPG_RECIPIENTS names no recipient")
        return cls(
            recipients=names,
            archive_dir=Path(archive_dir) if archive_dir else state_dir / "archive",
            key_dir=Path(key_dir) if key_dir else state_dir / "keys",
            required=required,
            gnupghome=gnupghome or None,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], state_dir: Path) -> ArchivePolicy:
        """The policy from GNUPGHOME and the DROPSYNC_GPG_*/ARCHIVE/KEY/REQUIRE variables."""
        return cls.from_values(
            state_dir, env.get("DROPSYNC_GPG_RECIPIENTS"), env.get("DROPSYNC_ARCHIVE_DIR"),
            env.get("DROPSYNC_KEY_DIR"), env.get("DROPSYNC_REQUIRE_ARCHIVE"), env.get("GNUPGHOME"),
        )

    def decide(self, section: ArchiveSection) -> tuple[bool, str]:
        """(enabled, why) for a drop whose sync.yml has this `archive` section."""
        if self.required:
            if not section.enabled:
                return True, "required by DROPSYNC_REQUIRE_ARCHIVE (sync.yml's archive.enabled: false is overridden)"
            return True, "required by DROPSYNC_REQUIRE_ARCHIVE"
        if not self.recipients:
            return False, "disabled: DROPSYNC_GPG_RECIPIENTS is not set"
        if not section.enabled:
            return False, "disabled by sync.yml (archive.enabled: false)"
        return True, "enabled"
