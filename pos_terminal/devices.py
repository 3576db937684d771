"""The terminal's devices, built from the backends the configuration names, through the registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pos_terminal.ports import Display, InputDevice, ReceiptPrinter
from pos_terminal.registry import KINDS, DevicesConfig, Role, backend


@dataclass
class Devices:
    inputs: Mapping[str, InputDevice]  # by kind: keypad, scanner, ...; opened in this order
    display: Display
    printer: ReceiptPrinter


def build_devices(config: DevicesConfig) -> Devices:
    """Instantiate the backends the configuration names (no I/O until `open`)."""
    built: dict[Role, dict[str, Any]] = {role: {} for role in Role}
    for kind, section in config.sections.items():
        device = backend(kind, section.type).factory(section.settings)
        built[KINDS[kind].role][kind] = device
    [display] = built[Role.DISPLAY].values()
    [printer] = built[Role.PRINTER].values()
    return Devices(
        inputs=cast(dict[str, InputDevice], built[Role.INPUT]),
        display=cast(Display, display),
        printer=cast(ReceiptPrinter, printer),
    )
