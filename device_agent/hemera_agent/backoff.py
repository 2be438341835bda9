"""Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015): the n-th retry waits a uniform random time in [0, min(cap, base * factor**n)].

Full jitter is what keeps a fleet from reconnecting in lock-step: after a broker outage every RTU
sees the same failure at the same moment, and without jitter they would all retry at 1 s, 2 s,
4 s... together. The random source is injected, so tests pin the draw.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_seconds: float = 1.0
    cap_seconds: float = 120.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds or self.factor < 1:
            raise ValueError("backoff needs 0 < base <= cap and factor >= 1")

    def ceiling(self, attempt: int | None = None) -> float:
        """The largest delay the given (default: next) attempt may draw."""
        n = self.attempt if attempt is None else attempt
        if self.factor == 1 or self.cap_seconds == self.base_seconds:
            return self.base_seconds
        # Clamp the exponent first: factor**n overflows a float after a long enough outage.
        exponent = min(n, 1 + math.ceil(math.log(self.cap_seconds / self.base_seconds, self.factor)))
        return min(self.cap_seconds, self.base_seconds * self.factor**exponent)

    def next_delay(self) -> float:
        """Draw the delay before the next attempt and count the attempt."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """After a success: the next failure starts again from `base_seconds`."""
        self.attempt = 0
