"""Device interfaces (one Protocol per kind) and the config-driven choice of backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pos_terminal.config import DevicesConfig
from pos_terminal.errors import ConfigError
from pos_terminal.machine import Event, Screen

Post = Callable[[Event], None]


class InputDevice(Protocol):
    """Keypad, scanner, card reader: turns what it reads into events for the runtime."""

    async def open(self, post: Post) -> None: ...

    async def close(self) -> None: ...


class Display(Protocol):
    """The customer display. `show` must return at once; slow drivers queue internally."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def show(self, screen: Screen) -> None: ...


class ReceiptPrinter(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def print_job(self, name: str, data: bytes) -> None:
        """Print one receipt's ESC/POS bytes. Raises DeviceError when the printer fails."""


@dataclass
class Devices:
    keypad: InputDevice
    scanner: InputDevice
    display: Display
    printer: ReceiptPrinter


def build_devices(config: DevicesConfig) -> Devices:
    """Instantiate the backends the configuration names (no I/O until `open`)."""
    from hw_mocks.display import MockDisplay
    from hw_mocks.keypad import MockKeypad
    from hw_mocks.printer import MockPrinter
    from hw_mocks.scanner import MockScanner

    if config.printer.type != "mock":
        raise ConfigError(f"unknown printer type {config.printer.type!r}; valid: mock")
    return Devices(
        keypad=MockKeypad(),
        scanner=MockScanner(),
        display=MockDisplay(),
        printer=MockPrinter(Path(config.printer.out_dir), encoding=config.printer.encoding),
    )
