"""Text customer display on a character device: a VFD or LCD pole display on a serial port or
USB-serial adapter (CD5220 and ESC/POS class), written by a worker thread; the newest screen
wins, so a slow link never holds up the loop. A lost device is reopened and shown again.
"""

from __future__ import annotations

import logging
import os
import termios
import threading
import tty
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from pos_terminal import money
from pos_terminal.config_fields import bounds
from pos_terminal.ports import Backend, Notice, Screen
from pos_terminal.supervision import Restart, worker_thread

log = logging.getLogger(__name__)

CLEAR = b"\x0c"  # form feed: clears the display and homes the cursor
NEWLINE = b"\r\n"
RESTART = Restart(first_s=0.5, max_s=30.0, healthy_s=2.0)  # the writer thread raised
BAUDS = {
    rate: getattr(termios, f"B{rate}")
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
}


_BAUD_RULE = "one of " + ", ".join(map(str, BAUDS))


def _baud(rate: int) -> None:
    """Raises ValueError for a line speed termios does not offer."""
    if rate not in BAUDS:
        raise ValueError(f"{rate} is not a line speed: {_BAUD_RULE}")


@dataclass(frozen=True)
class TtyDisplayConfig:
    """`devices.display` with `type: tty`: a text display on a serial port or device file."""

    device: str = field(metadata=bounds(min_len=1))  # /dev/ttyUSB0, /dev/serial/by-id/...
    # line speed, set when the device is a terminal (a plain file is written as it is)
    baud: int = field(default=9600, metadata=bounds(check=_baud, rule=_BAUD_RULE))
    columns: int = field(default=20, metadata=bounds(min=8, max=80))  # a CJK character takes 2
    rows: int = field(default=2, metadata=bounds(min=1, max=16))
    encoding: Literal["gb18030", "gbk", "ascii"] = "gb18030"  # ascii shows CJK as "?"
    reconnect_s: float = field(default=1.0, metadata=bounds(min=0.05, max=60.0))


def frame(screen: Screen, columns: int, rows: int) -> list[str]:
    """The screen as at most `rows` lines of at most `columns` display columns: the title, the
    amount (with the full-width ￥, as on receipts), then its lines (a QR code cannot be drawn:
    its screen's text says what to do)."""
    lines = [screen.title]
    if screen.amount_fen is not None:
        lines.append(money.format_receipt_yuan(screen.amount_fen))  # ￥: ¥ is not in GBK
    lines.extend(screen.lines)
    return [_fit(line, columns) for line in lines[:rows]]


def _fit(text: str, columns: int) -> str:
    out, used = [], 0
    for char in text:
        width = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used + width > columns:
            break
        out.append(char)
        used += width
    return "".join(out)


class TtyDisplay:
    """Display: `show` hands the screen to the writer thread and returns at once."""

    def __init__(self, config: TtyDisplayConfig) -> None:
        self._config = config
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._pending: Screen | None = None
        self._thread: threading.Thread | None = None
        self._notice: Notice | None = None
        self._reported = ""

    async def open(self, notice: Notice | None = None) -> None:
        """Starts the writer; a device that cannot be opened is retried and shown as a notice."""
        self._notice = notice
        self._stop.clear()
        self._thread = worker_thread(
            f"display {self._config.device}",
            self._run,
            stop=self._stop,
            notice=notice,
            restart=RESTART,
        )
        self._thread.start()

    async def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def show(self, screen: Screen, cashier: Screen | None = None) -> None:
        """A pole display faces the customer: the cashier's screen is never written to it."""
        with self._changed:
            self._pending = screen
            self._changed.notify_all()

    # ------------------------------------------------------------------ writer thread only

    def _run(self) -> None:
        fd: int | None = None
        screen: Screen | None = None  # not shown yet
        try:
            while not self._stop.is_set():
                with self._changed:
                    if self._pending is None and screen is None:
                        self._changed.wait(timeout=0.5)
                    if self._pending is not None:
                        screen, self._pending = self._pending, None
                if screen is None:
                    continue
                try:
                    fd = self._open() if fd is None else fd
                    self._write(fd, screen)
                    screen = None
                except OSError as exc:
                    self._report(f"{self._config.device}: {exc.strerror or exc}")
                    _closed(fd)
                    fd = None
                    self._stop.wait(self._config.reconnect_s)
        finally:
            _closed(fd)

    def _open(self) -> int:
        fd = os.open(self._config.device, os.O_WRONLY | os.O_NOCTTY | os.O_APPEND)
        if os.isatty(fd):
            tty.setraw(fd)
            attributes = termios.tcgetattr(fd)
            attributes[4] = attributes[5] = BAUDS[self._config.baud]
            termios.tcsetattr(fd, termios.TCSANOW, attributes)
        log.info("display %s open", self._config.device)
        self._report("")
        return fd

    def _write(self, fd: int, screen: Screen) -> None:
        lines = frame(screen, self._config.columns, self._config.rows)
        data = CLEAR + NEWLINE.join(line.encode(self._config.encoding, "replace") for line in lines)
        while data:
            data = data[os.write(fd, data) :]

    def _report(self, message: str) -> None:
        """Tell the screen once per change: the trouble, or "" once the display works again."""
        if message == self._reported:
            return
        self._reported = message
        if message:
            log.warning("display %s; retrying every %.1f s", message, self._config.reconnect_s)
        if self._notice is not None:
            self._notice("display", message)


def _closed(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError as exc:
            log.debug("closing the display: %s", exc)


BACKEND = Backend(config=TtyDisplayConfig, factory=TtyDisplay)
