"""HID (keyboard-wedge) code scanner over evdev: the device is grabbed, its key bursts decoded by
drivers/hid_decode.py; also home of the evdev reading loop the cashier keypad shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from drivers.hid_decode import LineState, RawEvent, feed_line
from drivers.repeats import RepeatFilter
from pos_terminal.config_fields import bounds
from pos_terminal.errors import DeviceError
from pos_terminal.ports import Backend, CodeRead, DeviceSink, Notice
from pos_terminal.supervision import Restart, supervise_task

log = logging.getLogger(__name__)

RESTART = Restart(first_s=0.5, max_s=30.0, healthy_s=2.0)  # the reading task raised


@dataclass(frozen=True)
class HidScannerConfig:
    """`devices.scanner` with `type: hid`: a USB scanner that types, read with evdev."""

    device: str = field(metadata=bounds(min_len=1))  # /dev/input/by-id/usb-...-event-kbd
    inter_key_timeout_s: float = field(default=0.05, metadata=bounds(min=0.005, max=1.0))
    repeat_window_s: float = field(default=2.0, metadata=bounds(min=0.0, max=600.0))
    reconnect_s: float = field(default=1.0, metadata=bounds(min=0.1, max=60.0))


def import_evdev() -> ModuleType:
    """Raises DeviceError with the install hint when python-evdev is missing."""
    try:
        import evdev
    except ImportError as exc:
        raise DeviceError(
            "HID devices need python-evdev, which is not installed: "
            "`pip install 'pos-terminal[hid]'` (needs gcc, python3-dev and kernel headers) "
            "or `sudo apt-get install python3-evdev`; or set the device `type: mock`"
        ) from exc
    return evdev


def open_grabbed(evdev: ModuleType, path: str) -> Any:
    """Open and grab an input device. Raises DeviceError naming the fix."""
    try:
        device = evdev.InputDevice(path)
    except PermissionError as exc:
        raise DeviceError(
            f"{path}: permission denied; add the user to group `input` (`sudo adduser $USER input`)"
        ) from exc
    except OSError as exc:
        raise DeviceError(f"{path}: {exc.strerror or exc}; is the device plugged in?") from exc
    try:
        device.grab()  # exclusive: the keystrokes must not reach a console or another program
    except OSError as exc:
        device.close()
        raise DeviceError(
            f"{path}: cannot grab it ({exc.strerror}); another program has it"
        ) from exc
    return device


class EvdevReader:
    """Reads a grabbed evdev device on the event loop; reopens it after an unplug, and after
    the reading task raised (supervised)."""

    def __init__(self, path: str, reconnect_s: float, on_event: Callable[[RawEvent], None]) -> None:
        self._path = path
        self._reconnect_s = reconnect_s
        self._on_event = on_event
        self._task: asyncio.Task[None] | None = None
        self._opened: Any = None  # the device `start` opened, until the reading task takes it

    async def start(self, notice: Notice | None) -> None:
        """Raises DeviceError when evdev is missing or the first open fails."""
        evdev = import_evdev()
        self._opened = open_grabbed(evdev, self._path)
        self._task = asyncio.create_task(
            supervise_task(
                self._path, functools.partial(self._run, evdev), notice=notice, restart=RESTART
            ),
            name=f"evdev {self._path}",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._opened is not None:  # stopped before the reading task began
            self._opened.close()
            self._opened = None

    async def _run(self, evdev: ModuleType) -> None:
        device, self._opened = self._opened, None
        while True:
            if device is None:  # unplugged, or a restart after the task raised
                device = await self._reopen(evdev)
            try:
                async for event in device.async_read_loop():
                    self._on_event(event)
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    log.warning("%s: %s", self._path, exc)
                log.warning("%s unplugged; reopening every %.1f s", self._path, self._reconnect_s)
            finally:
                with contextlib.suppress(OSError):
                    device.close()
            device = None

    async def _reopen(self, evdev: ModuleType) -> Any:
        while True:
            await asyncio.sleep(self._reconnect_s)
            try:
                device = open_grabbed(evdev, self._path)
            except DeviceError:
                continue
            log.info("%s reconnected", self._path)
            return device


class HidScanner:
    """InputDevice: Enter-terminated bursts become CodeRead (after the repeat window)."""

    def __init__(
        self, config: HidScannerConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._state = LineState()
        self._repeats = RepeatFilter(config.repeat_window_s)
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
        self._state, line = feed_line(self._state, event, self._config.inter_key_timeout_s)
        if line is None or self._sink is None:
            return
        code = line.strip()
        if code and self._repeats.accept(code, self._clock()):
            self._sink(CodeRead(code))


BACKEND = Backend(config=HidScannerConfig, factory=HidScanner)
