"""The gpg resource: keyring, recipients, archive and key folders, and whether archives are required."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.settings import Settings


class GpgResource(dg.ConfigurableResource):
    """Encrypted-archive settings of the deployment."""

    gnupghome: str | None = Field(default=None, description="GNUPGHOME (unset: gpg's default keyring)")
    recipients: list[str] = Field(default_factory=list, description="DROPSYNC_GPG_RECIPIENTS")
    archive_dir: str | None = Field(default=None, description="DROPSYNC_ARCHIVE_DIR (unset: archive/ in the state folder)")
    key_dir: str | None = Field(default=None, description="DROPSYNC_KEY_DIR (unset: keys/ in the state folder)")
    require_archive: bool | None = Field(default=None, description="DROPSYNC_REQUIRE_ARCHIVE (unset: on when there are recipients)")

    @classmethod
    def of(cls, policy: ArchivePolicy) -> GpgResource:
        """The resource holding a deployment's archive policy."""
        return cls(gnupghome=policy.gnupghome, recipients=list(policy.recipients), archive_dir=str(policy.archive_dir),
                   key_dir=str(policy.key_dir), require_archive=policy.required)

    def policy(self, settings: Settings) -> ArchivePolicy:
        """The policy; the folders default to `archive/` and `keys/` in the state folder."""
        return ArchivePolicy.configured(settings.state_dir, self.recipients, self.archive_dir, self.key_dir,
                                        self.require_archive, self.gnupghome)
