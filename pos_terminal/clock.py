"""The injectable clock: wall time for records, monotonic time and sleeps for deadlines."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware wall-clock time in the terminal's time zone."""

    def timestamp(self) -> float:
        """Unix seconds (request signatures)."""

    def monotonic(self) -> float:
        """Seconds for measuring intervals and deadlines."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        try:
            self.tz: timezone | ZoneInfo = ZoneInfo(tz)
        except (KeyError, ValueError):
            self.tz = timezone(timedelta(hours=8), "CST")

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def timestamp(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
