"""Mock customer display: keeps every screen shown, newest last."""

from __future__ import annotations

from pos_terminal.machine import Screen


class MockDisplay:
    def __init__(self) -> None:
        self.history: list[Screen] = []

    async def open(self) -> None:
        self.history.clear()

    async def close(self) -> None:
        pass

    def show(self, screen: Screen) -> None:
        self.history.append(screen)

    @property
    def current(self) -> Screen | None:
        return self.history[-1] if self.history else None
