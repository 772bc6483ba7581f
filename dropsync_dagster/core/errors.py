"""Exceptions with one-line messages that name the drop, file and key involved."""


class DropsyncError(Exception):
    """Base class: every error here prints as one clear line."""


class ConfigError(DropsyncError):
    """A `sync.yml` or deployment setting is invalid; nothing was done (CLI exit 2)."""


class UnsafePathError(DropsyncError):
    """A path would leave the root it must stay in."""


class IntegrityError(DropsyncError):
    """Bytes on disk do not match their recorded digests."""


class RefusedError(DropsyncError):
    """The run was refused: outage, a live owner holds the drop, a write failed (CLI exit 3)."""
