"""Serial code scanner (pyserial): lines ended by a configured suffix become CodeRead events;
the port is reopened after the scanner is unplugged.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.repeats import RepeatFilter
from pos_terminal.config_fields import bounds
from pos_terminal.ports import Backend, CodeRead, DeviceSink, Notice
from pos_terminal.supervision import Restart, worker_thread

log = logging.getLogger(__name__)

SUFFIXES = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
MAX_LINE = 512
RESTART = Restart(first_s=0.5, max_s=30.0, healthy_s=2.0)  # the worker thread raised


@dataclass(frozen=True)
class SerialScannerConfig:
    """`devices.scanner` with `type: serial`: a scanner on a serial port (pyserial)."""

    port: str = "/dev/ttyACM0"  # a device path, or a pyserial URL such as loop://
    baud: int = field(default=9600, metadata=bounds(min=1200, max=921600))
    suffix: Literal["CR", "LF", "CRLF"] = "CR"
    reconnect_s: float = field(default=1.0, metadata=bounds(min=0.05, max=60.0))
    # a partial line older than this is dropped (a scan cut short by unplugging)
    partial_timeout_s: float = field(default=0.5, metadata=bounds(min=0.01, max=10.0))
    repeat_window_s: float = field(default=2.0, metadata=bounds(min=0.0, max=600.0))


class LineSplitter:
    """Bytes in, complete lines out; pure, time passed in."""

    def __init__(self, suffix: bytes, partial_timeout_s: float) -> None:
        self._suffix = suffix
        self._timeout = partial_timeout_s
        self._buffer = b""
        self._last = 0.0

    def feed(self, data: bytes, now: float) -> list[str]:
        if self._buffer and now - self._last > self._timeout:
            self._buffer = b""
        self._last = now
        *lines, self._buffer = (self._buffer + data).split(self._suffix)
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
        # strip: a scanner set to CRLF while we expect CR leaves a stray LF in front
        texts = (line.decode("ascii", "replace").strip() for line in lines)
        return [t for t in texts if t]

    def reset(self) -> None:
        self._buffer = b""


class SerialScanner:
    """InputDevice: one worker thread owns the port; reconnects every `reconnect_s` when lost."""

    def __init__(
        self, config: SerialScannerConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.connects = 0

    async def open(self, sink: DeviceSink, notice: Notice | None = None) -> None:
        self._stop.clear()
        self._thread = worker_thread(
            "serial scanner",
            functools.partial(self._run, sink),
            stop=self._stop,
            notice=notice,
            restart=RESTART,
        )
        self._thread.start()

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self, sink: DeviceSink) -> None:
        import serial

        splitter = LineSplitter(SUFFIXES[self._config.suffix], self._config.partial_timeout_s)
        repeats = RepeatFilter(self._config.repeat_window_s)
        reported = False
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(
                    self._config.port, baudrate=self._config.baud, timeout=0.1
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                if not reported:
                    log.warning(
                        "serial scanner %s: %s; retrying every %.1f s",
                        self._config.port,
                        exc,
                        self._config.reconnect_s,
                    )
                    reported = True
                self._stop.wait(self._config.reconnect_s)
                continue
            reported = False
            self.connects += 1
            self.connected.set()
            log.info("serial scanner connected on %s", self._config.port)
            try:
                self._read(port, splitter, repeats, sink)
            except (serial.SerialException, OSError) as exc:
                log.warning("serial scanner %s lost: %s", self._config.port, exc)
            finally:
                self.connected.clear()
                splitter.reset()
                port.close()

    def _read(
        self, port: Any, splitter: LineSplitter, repeats: RepeatFilter, sink: DeviceSink
    ) -> None:
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting or 1))
            if not data:
                continue
            now = self._clock()
            for code in splitter.feed(data, now):
                if repeats.accept(code, now):
                    sink(CodeRead(code))


BACKEND = Backend(config=SerialScannerConfig, factory=SerialScanner)
