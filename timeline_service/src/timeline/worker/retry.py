"""How long to wait before trying a failed event again."""

from __future__ import annotations

import random
from typing import NamedTuple


class Backoff(NamedTuple):
    """Capped exponential backoff with jitter: `first`, twice that, ... up to `cap`
    seconds between attempts, for as long as it takes. The jitter (a quarter either
    way) keeps the workers of a group from hammering a store that comes back all in
    the same instant."""

    first: float
    cap: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failure (1, 2, ...)."""
        base = min(self.cap, self.first * 2 ** min(attempt - 1, 30))
        return base * random.uniform(0.75, 1.25)
