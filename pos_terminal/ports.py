"""Ports: the Protocol of each device kind, the value types that belong to them, device events.

Standard library only. Drivers and mocks implement these Protocols and emit device events; the
runtime maps device events to the state machine's events, so no driver knows the machine. The
machine in turn speaks the devices' vocabulary (`Key`, `Screen`) from here. Each backend module
declares its `BACKEND` (its config class and its factory) for the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

from pos_terminal.config_fields import bounds


class Key(StrEnum):
    """Cashier keypad keys other than the digits."""

    ENTER = "enter"
    BACKSPACE = "backspace"
    CLEAR = "clear"
    CANCEL = "cancel"
    POINT = "point"  # the decimal point: "12.5" is ¥12.50
    QR = "qr"  # "show a QR code for the customer to scan"
    REPRINT = "reprint"  # print the last receipt again, marked 重印 REPRINT
    REFUND = "refund"  # start a refund (supervisor)


@dataclass(frozen=True)
class Screen:
    """What a display shows: the customer's, or the cashier's side."""

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


# ---------------------------------------------------------------------------- device events


@dataclass(frozen=True)
class KeyPress:
    """The cashier pressed a key: a digit "0".."9" or a `Key` value."""

    key: str


@dataclass(frozen=True)
class CodeRead:
    """A scanner read a code (a payment code, a receipt's QR): its text."""

    code: str


DeviceEvent = KeyPress | CodeRead
# Where an input device delivers its events; safe to call from any thread.
DeviceSink = Callable[[DeviceEvent], None]


# ---------------------------------------------------------------------------- device Protocols


class InputDevice(Protocol):
    """Keypad, scanner, card reader: turns what it reads into device events.

    A device with worker threads or tasks reports their failures through `notice`.
    """

    async def open(self, sink: DeviceSink, notice: Notice | None = None) -> None: ...

    async def close(self) -> None: ...


class Display(Protocol):
    """The customer display. `show` must return at once; slow drivers queue internally."""

    async def open(self, notice: Notice | None = None) -> None:
        """`notice` hears about failures of the driver's background work."""

    async def close(self) -> None: ...

    def show(self, screen: Screen, cashier: Screen | None = None) -> None:
        """Show `screen` to the customer. `cashier`, when given, is what the cashier sees
        instead (a supervisor's prompt): only a display with a cashier's side shows it."""


class ReceiptPrinter(Protocol):
    async def open(self, notice: Notice | None = None) -> None:
        """`notice` hears about failures of the driver's background work."""

    async def close(self) -> None: ...

    async def print_job(self, name: str, data: bytes) -> None:
        """Print one receipt's ESC/POS bytes. Raises DeviceError when the printer fails."""

    async def paper_status(self) -> PaperStatus:
        """What the paper sensor says; UNKNOWN when the printer does not answer."""


@dataclass(frozen=True)
class PrinterSettings:
    """What every printer backend's settings hold: the paper and the receipt's layout."""

    # while receipts wait for a printer that failed, look at it this often
    check_interval_s: float = field(default=5.0, metadata=bounds(min=0.05, max=600.0))
    columns: int = field(default=32, metadata=bounds(min=24, max=64))  # font A: 57 mm paper 32
    dots_per_line: int = field(default=384, metadata=bounds(min=256, max=832))  # 57 mm: 384
    native_qr: bool = False  # the printer draws QR codes itself (GS ( k); else they are raster
    cutter: bool = False
    encoding: Literal["gb18030", "gbk"] = "gb18030"
    # which copies a reprint (重印 REPRINT) prints; a first print is both
    reprint_copies: Literal["customer", "merchant", "both"] = "customer"


# ---------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class NoSettings:
    """The settings of a backend that takes none."""


_Settings = TypeVar("_Settings")


@dataclass(frozen=True)
class Backend(Generic[_Settings]):
    """What a backend module registers as `BACKEND`: the dataclass its YAML section is read
    into (`type:` aside), and the factory that builds the device from it (no I/O before open)."""

    config: type[_Settings]
    factory: Callable[[_Settings], Any]
