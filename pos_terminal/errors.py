"""The application's exception tree.

PosError
├── ConfigError          the configuration file is wrong; start-up stops with one line
├── DeviceError          a peripheral failed (printer, scanner, keypad ...)
└── PaymentError         a payment provider call failed (see payments/wechat.py for its subtree)
"""

from __future__ import annotations


class PosError(Exception):
    """Base of every error this application raises on purpose."""


class ConfigError(PosError):
    """A configuration problem, reported as `file:line: key.path: what is wrong`."""

    def __init__(
        self, message: str, *, file: str = "", line: int | None = None, key: str = ""
    ) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, message
        where = file + (f":{line}" if line is not None else "")
        parts = [p for p in (where, key) if p]
        super().__init__(": ".join([*parts, message]))


class DeviceError(PosError):
    """A peripheral failed; the message names the device and what to do next."""


class PaymentError(PosError):
    """A payment provider call failed."""
