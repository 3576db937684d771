"""Cashier keypad over evdev (a USB numeric keypad): key presses become KeyPress events."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.hid_decode import Char, KeyState, Named, RawEvent, Token, translate
from drivers.hid_scanner import EvdevReader
from pos_terminal.config_fields import bounds
from pos_terminal.ports import Backend, DeviceSink, Key, KeyPress, Notice

# What each decoded key means to the sale. NumLock off turns KP keys into navigation names;
# `ignore_numlock` keeps digits digits whatever the lock says (cashiers cannot see its LED).
DEFAULT_KEYS: dict[Token, str] = {
    **{Char(d): d for d in "0123456789"},
    Named("enter"): Key.ENTER, Named("kpenter"): Key.ENTER, Char("="): Key.ENTER,
    Named("backspace"): Key.BACKSPACE,
    Named("delete"): Key.CLEAR, Char("."): Key.POINT,
    Named("esc"): Key.CANCEL, Char("-"): Key.CANCEL, Char("/"): Key.CANCEL,
    Char("+"): Key.QR, Char("*"): Key.QR,
}  # fmt: skip
_NAV_DIGITS = {"insert": "0", "end": "1", "down": "2", "pagedown": "3", "left": "4", "kp5": "5",
               "right": "6", "home": "7", "up": "8", "pageup": "9"}  # fmt: skip


@dataclass(frozen=True)
class HidKeypadConfig:
    """`devices.keypad` with `type: hid`: a USB numeric keypad read with evdev (grabbed)."""

    device: str = field(metadata=bounds(min_len=1))  # /dev/input/by-id/usb-...-event-kbd
    ignore_numlock: bool = True
    reconnect_s: float = field(default=1.0, metadata=bounds(min=0.1, max=60.0))


def key_for(token: Token, ignore_numlock: bool) -> str | None:
    """The sale key a decoded token stands for, or None."""
    if ignore_numlock and isinstance(token, Named) and token.name in _NAV_DIGITS:
        return _NAV_DIGITS[token.name]
    return DEFAULT_KEYS.get(token)


class HidKeypad:
    """InputDevice for the cashier keypad."""

    def __init__(self, config: HidKeypadConfig) -> None:
        self._config = config
        self._keys = KeyState()
        self._sink: DeviceSink | None = None
        self._reader = EvdevReader(config.device, config.reconnect_s, self.feed)

    async def open(self, sink: DeviceSink, notice: Notice | None = None) -> None:
        self._sink = sink
        await self._reader.start(notice)

    async def close(self) -> None:
        await self._reader.stop()
        self._sink = None

    def feed(self, event: RawEvent) -> None:
        """One evdev event (public so tests can drive the driver without a device)."""
        self._keys, token = translate(self._keys, event)
        if token is None or self._sink is None:
            return
        key = key_for(token, self._config.ignore_numlock)
        if key is not None:
            self._sink(KeyPress(key))


BACKEND = Backend(config=HidKeypadConfig, factory=HidKeypad)
