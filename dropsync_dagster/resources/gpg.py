"""The gpg resource: keyring, recipients, archive and key folders, and whether archives are required."""

from __future__ import annotations

from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.settings import Settings
from dropsync_dagster.resources.env_backed import EnvBackedResource


class GpgResource(EnvBackedResource):
    """Encrypted-archive settings; unset fields fall back to their environment variables."""

    ENV = {
        "gnupghome": "GNUPGHOME",
        "recipients": "DROPSYNC_GPG_RECIPIENTS",
        "archive_dir": "DROPSYNC_ARCHIVE_DIR",
        "key_dir": "DROPSYNC_KEY_DIR",
        "require_archive": "DROPSYNC_REQUIRE_ARCHIVE",
    }

    gnupghome: str | None = None
    recipients: str | None = None
    archive_dir: str | None = None
    key_dir: str | None = None
    require_archive: str | None = None

    def policy(self, settings: Settings) -> ArchivePolicy:
        """The parsed policy; the folders default to `archive/` and `keys/` in the state folder."""
        return ArchivePolicy.from_env(self.env(), settings.state_dir)
