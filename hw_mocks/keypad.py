"""Mock cashier keypad: key presses come from a test, the demo script or the laptop console."""

from __future__ import annotations

from pos_terminal.devices import Post
from pos_terminal.machine import KeyPressed
from pos_terminal.ports import Notice


class MockKeypad:
    def __init__(self) -> None:
        self._post: Post | None = None

    async def open(self, post: Post, notice: Notice | None = None) -> None:
        """Nothing runs in the background, so there is nothing for `notice` to hear."""
        self._post = post

    async def close(self) -> None:
        self._post = None

    def press(self, *keys: str) -> None:
        """Press keys in order: digits "0".."9" or machine.Key values."""
        if self._post is None:
            raise RuntimeError("the mock keypad is not open")
        for key in keys:
            self._post(KeyPressed(key))

    def type_amount(self, digits: str) -> None:
        self.press(*digits)
