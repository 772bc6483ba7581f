"""Resources whose every field is backed by an environment variable of the deployment."""

from __future__ import annotations

import os
from typing import ClassVar

import dagster as dg


class EnvBackedResource(dg.ConfigurableResource):
    """Fields left unset read their environment variable (named in ENV) at use time."""

    ENV: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_env(cls) -> EnvBackedResource:
        """Bind each set variable as a dg.EnvVar, so the UI shows where a value came from."""
        return cls(**{f: dg.EnvVar(v) for f, v in cls.ENV.items() if os.environ.get(v)})

    def env(self) -> dict[str, str]:
        """The process environment with this resource's explicit values laid over it."""
        env = dict(os.environ)
        env.update({self.ENV[f]: v for f, v in self.model_dump().items() if f in self.ENV and v is not None})
        return env
