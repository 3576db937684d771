"""Device interfaces (one Protocol per kind) and the config-driven choice of backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pos_terminal.machine import Event
from pos_terminal.ports import Notice, PaperStatus, Screen

if TYPE_CHECKING:  # config imports the drivers' settings, and the drivers import this module
    from pos_terminal.config import DevicesConfig, KeypadConfig, PrinterConfig, ScannerConfig

Post = Callable[[Event], None]


class InputDevice(Protocol):
    """Keypad, scanner, card reader: turns what it reads into events for the runtime.

    A device with worker threads or tasks reports their failures through `notice`.
    """

    async def open(self, post: Post, notice: Notice | None = None) -> None: ...

    async def close(self) -> None: ...


class Display(Protocol):
    """The customer display. `show` must return at once; slow drivers queue internally."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def show(self, screen: Screen) -> None: ...


class ReceiptPrinter(Protocol):
    async def open(self, notice: Notice | None = None) -> None:
        """`notice` hears about failures of the driver's background work."""

    async def close(self) -> None: ...

    async def print_job(self, name: str, data: bytes) -> None:
        """Print one receipt's ESC/POS bytes. Raises DeviceError when the printer fails."""

    async def paper_status(self) -> PaperStatus:
        """What the paper sensor says; UNKNOWN when the printer does not answer."""


@dataclass
class Devices:
    keypad: InputDevice
    scanner: InputDevice
    display: Display
    printer: ReceiptPrinter


def build_devices(config: DevicesConfig) -> Devices:
    """Instantiate the backends the configuration names (no I/O until `open`)."""
    from hw_mocks.display import MockDisplay

    return Devices(
        keypad=_keypad(config.keypad),
        scanner=_scanner(config.scanner),
        display=MockDisplay(),
        printer=_printer(config.printer),
    )


def _keypad(config: KeypadConfig) -> InputDevice:
    if config.hid is not None:
        from drivers.hid_keypad import HidKeypad

        return HidKeypad(config.hid)
    from hw_mocks.keypad import MockKeypad

    return MockKeypad()


def _scanner(config: ScannerConfig) -> InputDevice:
    if config.type == "camera":
        from drivers.camera import CameraScanner

        return CameraScanner(config.camera)
    if config.type == "serial":
        from drivers.serial_scanner import SerialScanner

        return SerialScanner(config.serial)
    if config.hid is not None:
        from drivers.hid_scanner import HidScanner

        return HidScanner(config.hid)
    from hw_mocks.scanner import MockScanner

    return MockScanner()


def _printer(config: PrinterConfig) -> ReceiptPrinter:
    if config.type == "escpos":
        from drivers.printer_escpos import EscposPrinter

        return EscposPrinter(config.escpos)
    from hw_mocks.printer import MockPrinter

    return MockPrinter(
        Path(config.out_dir),
        encoding=config.encoding,
        dots_per_line=config.dots_per_line,
        png=config.png,
    )
