"""Sandbox time: a manual clock for tests, and the order clock that the control API can advance.

The order clock (USERPAYING outcomes, code and order expiry, the 7-day windows) is the injected
clock plus an offset; signatures and the 5-minute skew check keep the injected clock, so a
terminal in another process still talks to a sandbox whose orders live days ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ManualClock:
    """A clock that moves only when told to: `clock()` returns Unix seconds."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class OrderClock:
    """`base() + offset_s`; the offset only grows (orders never see time run backwards)."""

    def __init__(self, base: Callable[[], float], offset_s: float = 0.0) -> None:
        self._base = base
        self._lock = threading.Lock()
        self.offset_s = offset_s

    def __call__(self) -> float:
        return self._base() + self.offset_s

    def advance(self, seconds: float) -> float:
        """Move order time forward; returns the new offset.

        Raises:
            ValueError: `seconds` is negative.
        """
        if seconds < 0:
            raise ValueError(f"the order clock only moves forward, got {seconds}")
        with self._lock:
            self.offset_s += seconds
            return self.offset_s
