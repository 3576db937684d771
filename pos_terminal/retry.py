"""The one retry policy: exponential backoff between tries, each call site naming its limits.

A `Backoff` is only the schedule of pauses; the caller sleeps them its own way (the injected
clock, a stop event, a cancel event), so tests with a fake clock stay fast and deterministic.
No jitter: one terminal retries alone, and a fixed schedule is what the tests pin down.

    pauses = Backoff(first_s=0.5, max_s=30.0).pauses()
    while not await try_once():
        await clock.sleep(next(pauses))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Pauses between tries: `first_s`, then each `factor` times the last, never over `max_s`;
    `tries` bounds the tries (so `tries - 1` pauses), None retries for as long as it takes."""

    first_s: float
    max_s: float
    factor: float = 2.0
    tries: int | None = None

    def __post_init__(self) -> None:
        if not (self.first_s > 0 and self.max_s > 0 and self.factor >= 1):
            raise ValueError(f"a backoff needs positive pauses and a factor >= 1: {self}")
        if self.tries is not None and self.tries < 1:
            raise ValueError(f"a backoff needs at least one try: {self}")

    def after(self, pause_s: float | None) -> float:
        """The pause that follows `pause_s`; the first pause when it is None."""
        if pause_s is None:
            return min(self.first_s, self.max_s)
        return min(pause_s * self.factor, self.max_s)

    def pauses(self) -> Iterator[float]:
        """The pauses of one run of tries, in order; endless unless `tries` is set."""
        pause: float | None = None
        taken = 0
        while self.tries is None or taken < self.tries - 1:
            pause = self.after(pause)
            taken += 1
            yield pause
