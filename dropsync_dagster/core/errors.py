"""Exceptions with one-line messages that name the drop, file and key involved."""

import re


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


# `pkg.module.SomeError` (lower-case modules, a class named ...Error/Exception/Warning), and a
# leading `dagster...DagsterSomething:` whose message already says what happened.
_CLASS_PATH = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Z][A-Za-z0-9]*(?:Error|Exception|Warning))\b")
_DAGSTER_PREFIX = re.compile(r"^(?:dagster(?:\.[a-z_][a-z0-9_]*)*\.)?Dagster[A-Za-z]*(?:Error|Exception):\s*")


def without_class_paths(text: str) -> str:
    """`text` for people: a leading Dagster error class dropped, any other class path shortened to
    its class name (`requests.exceptions.ConnectionError` -> `ConnectionError`)."""
    return _CLASS_PATH.sub(r"\1", _DAGSTER_PREFIX.sub("", text))
