"""The injectable clock: wall time for records, monotonic time and sleeps for deadlines."""

from __future__ import annotations

import asyncio
import difflib
import time
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware wall-clock time in the terminal's time zone."""

    def timestamp(self) -> float:
        """Unix seconds (request signatures)."""

    def monotonic(self) -> float:
        """Seconds for measuring intervals and deadlines."""

    async def sleep(self, seconds: float) -> None: ...


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`, such as Asia/Shanghai.

    Raises:
        ValueError: this system knows no such zone; the message offers the closest name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        known = available_timezones()
        close = difflib.get_close_matches(name, known, n=1)
        hint = (
            f" (did you mean {close[0]!r}?)"
            if close
            else ("" if known else " (this system has no time zone database: install tzdata)")
        )
        raise ValueError(f"{name!r} is not a known time zone{hint}") from exc


class SystemClock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        """Raises ValueError for an unknown zone (the configuration has checked it)."""
        self.tz = zone(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def timestamp(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
