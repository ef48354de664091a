"""Capped, jittered exponential back-off for reconnect loops (pure; no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next()`` gives the delay before the next attempt: ``base * 2**n`` capped at ``cap``,
    with "full jitter" in [delay/2, delay] so that many clients do not reconnect in step.

    >>> b = Backoff(base=1.0, cap=4.0, rng=random.Random(1))
    >>> [round(b.next(), 2) <= c for c in (1, 2, 4, 4, 4)]
    [True, True, True, True, True]
    >>> b.reset(); b.attempt
    0
    """

    base: float = 0.2
    cap: float = 5.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0
