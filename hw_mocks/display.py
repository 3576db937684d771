"""Mock customer display: keeps the screens shown lately, newest last, and what the cashier's
side shows now."""

from __future__ import annotations

from collections import deque

from pos_terminal.ports import Backend, NoSettings, Notice, Screen

HISTORY = 200  # screens kept for tests to look back on; a long headless run must not grow


class MockDisplay:
    def __init__(self) -> None:
        self.history: deque[Screen] = deque(maxlen=HISTORY)  # the customer's
        self.cashier: Screen | None = None  # the cashier's side, now

    async def open(self, notice: Notice | None = None) -> None:
        """Nothing runs in the background, so there is nothing for `notice` to hear."""
        self.history.clear()
        self.cashier = None

    async def close(self) -> None:
        pass

    def show(self, screen: Screen, cashier: Screen | None = None) -> None:
        self.history.append(screen)
        self.cashier = screen if cashier is None else cashier

    @property
    def current(self) -> Screen | None:
        return self.history[-1] if self.history else None


BACKEND = Backend(config=NoSettings, factory=lambda _: MockDisplay())
