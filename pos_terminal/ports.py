"""Ports: the Protocol of each device kind, the value types that belong to them, device events.

Standard library only. Drivers and mocks implement these Protocols and emit device events; the
runtime maps device events to the state machine's events, so no driver knows the machine. The
machine in turn speaks the devices' vocabulary (`Key`, `Screen`) from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum


class Key(StrEnum):
    """Cashier keypad keys other than the digits."""

    ENTER = "enter"
    BACKSPACE = "backspace"
    CLEAR = "clear"
    CANCEL = "cancel"
    QR = "qr"  # "show a QR code for the customer to scan"
    REPRINT = "reprint"  # print the last receipt again, marked 重印 REPRINT
    REFUND = "refund"  # start a refund (supervisor)


@dataclass(frozen=True)
class Screen:
    """What the customer display shows."""

    title: str
    amount_fen: int | None = None
    lines: tuple[str, ...] = ()
    qr: str | None = None


class PaperStatus(Enum):
    OK = "ok"
    NEAR_END = "near_end"  # the near-end sensor sees the core: a few metres left
    OUT = "out"
    UNKNOWN = "unknown"  # no reply, a garbled reply, or a write-only link: never "OK"


# (device, message): what went wrong in one line, or "" once the device works again.
# Called from the worker's own thread or task; the runtime's implementation is thread-safe.
Notice = Callable[[str, str], None]
