"""How often and how patiently a LabKey call is tried: the deployment's retry policy."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: `attempts` tries in all, delays base*2^n capped at max_delay."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 60.0  # per HTTP request, seconds

    def delay(self, attempt: int) -> float:
        """Delay before try `attempt + 1`, with jitter so that parallel runs do not retry in step."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
