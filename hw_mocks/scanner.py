"""Mock code scanner: delivers whatever a test, the demo or the mock customer presents, one code
at a time (`scan`) or a list played in order (`play`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pos_terminal.ports import Backend, CodeRead, DeviceSink, NoSettings, Notice


class MockScanner:
    def __init__(self) -> None:
        self._sink: DeviceSink | None = None

    async def open(self, sink: DeviceSink, notice: Notice | None = None) -> None:
        """Nothing runs in the background, so there is nothing for `notice` to hear."""
        self._sink = sink

    async def close(self) -> None:
        self._sink = None

    def scan(self, code: str) -> None:
        if self._sink is None:
            raise RuntimeError("the mock scanner is not open")
        self._sink(CodeRead(code))

    async def play(self, codes: Iterable[str], interval_s: float = 0.0) -> None:
        """Scan each code in order, `interval_s` apart (a customer after another)."""
        for i, code in enumerate(codes):
            if i and interval_s:
                await asyncio.sleep(interval_s)
            self.scan(code)


BACKEND = Backend(config=NoSettings, factory=lambda _: MockScanner())
