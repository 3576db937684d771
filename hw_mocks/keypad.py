"""Mock cashier keypad: key presses come from a test, the demo script or the laptop console."""

from __future__ import annotations

from pos_terminal.ports import Backend, DeviceSink, KeyPress, NoSettings, Notice


class MockKeypad:
    def __init__(self) -> None:
        self._sink: DeviceSink | None = None

    async def open(self, sink: DeviceSink, notice: Notice | None = None) -> None:
        """Nothing runs in the background, so there is nothing for `notice` to hear."""
        self._sink = sink

    async def close(self) -> None:
        self._sink = None

    def press(self, *keys: str) -> None:
        """Press keys in order: digits "0".."9" or ports.Key values."""
        if self._sink is None:
            raise RuntimeError("the mock keypad is not open")
        for key in keys:
            self._sink(KeyPress(key))

    def type_amount(self, digits: str) -> None:
        self.press(*digits)


BACKEND = Backend(config=NoSettings, factory=lambda _: MockKeypad())
