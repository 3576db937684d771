"""ESC/POS receipt printer over python-escpos connectors: USB, serial, network (9100), device file.

Implements devices.ReceiptPrinter. Every blocking call runs on the printer's own worker thread; a
lost link is reopened in the background with exponential backoff, so callers never wait on it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from pos_terminal.config_fields import bounds
from pos_terminal.errors import DeviceError
from pos_terminal.ports import Backend, Notice, PaperStatus, PrinterSettings
from pos_terminal.retry import Backoff
from pos_terminal.supervision import Restart, supervise_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from escpos.escpos import Escpos

log = logging.getLogger(__name__)

DLE_EOT_PAPER = b"\x10\x04\x04"  # DLE EOT 4: transmit roll paper sensor status
_T = TypeVar("_T")
RESTART = Restart(first_s=0.5, max_s=30.0, healthy_s=2.0)  # the reconnect loop raised


def parse_paper_status(reply: bytes) -> PaperStatus:
    """The DLE EOT 4 answer byte: fixed bits 0x12 set, 0x81 clear; 0x0C near end, 0x60 out.

    The last byte counts: a printer that answers late leaves an older byte in front of it.
    """
    if not reply:
        return PaperStatus.UNKNOWN
    byte = reply[-1]
    if byte & 0x93 != 0x12:
        return PaperStatus.UNKNOWN
    if byte & 0x60:
        return PaperStatus.OUT
    return PaperStatus.NEAR_END if byte & 0x0C else PaperStatus.OK


@dataclass(frozen=True)
class EscposPrinterConfig(PrinterSettings):
    """`devices.printer` with `type: escpos`: the paper, then how to reach the printer (only the
    fields of the chosen `connection` are used)."""

    connection: Literal["usb", "serial", "network", "file"] = "usb"
    # usb: ids and endpoints as `lsusb -v` shows them; the defaults are a common POS-5890 board
    usb_vendor_id: int = field(default=0x0416, metadata=bounds(min=1, max=0xFFFF))
    usb_product_id: int = field(default=0x5011, metadata=bounds(min=1, max=0xFFFF))
    usb_in_ep: int = field(default=0x81, metadata=bounds(min=0x81, max=0x8F))
    usb_out_ep: int = field(default=0x03, metadata=bounds(min=0x01, max=0x0F))
    # serial
    serial_port: str = "/dev/ttyUSB0"
    baudrate: int = field(default=9600, metadata=bounds(min=1200, max=921600))
    flow_control: Literal["none", "dsrdtr", "xonxoff"] = "none"
    # network (raw TCP, "JetDirect")
    host: str = "printer.local"  # the printer's address on the shop network
    port: int = field(default=9100, metadata=bounds(min=1, max=65535))
    # file: a character device such as the kernel's usblp; write-only, so paper is UNKNOWN
    device_file: str = "/dev/usb/lp0"
    timeout_s: float = field(default=5.0, metadata=bounds(min=0.1, max=60.0))  # open and write
    status_timeout_s: float = field(default=0.3, metadata=bounds(min=0.01, max=5.0))
    reconnect_min_s: float = field(default=0.5, metadata=bounds(min=0.01, max=60.0))
    reconnect_max_s: float = field(default=30.0, metadata=bounds(min=0.1, max=600.0))
    check_paper: bool = True  # ask DLE EOT 4 before each job and refuse it when the paper is out

    def describe(self) -> str:
        """The device in words, for messages: 'USB printer 0416:5011'."""
        if self.connection == "usb":
            return f"USB printer {self.usb_vendor_id:04x}:{self.usb_product_id:04x}"
        if self.connection == "serial":
            return f"serial printer {self.serial_port}@{self.baudrate}"
        if self.connection == "network":
            return f"network printer {self.host}:{self.port}"
        return f"printer file {self.device_file}"


def make_connector(config: EscposPrinterConfig) -> Escpos:
    """The python-escpos connector object for `config` (no I/O: it opens in `open()`).

    Raises:
        DeviceError: the Python package that connection needs is not installed.
    """
    from escpos import printer

    if config.connection == "usb":
        if not printer.Usb.is_usable():
            raise DeviceError(f"{config.describe()}: pyusb is missing; pip install pyusb")
        return printer.Usb(
            config.usb_vendor_id,
            config.usb_product_id,
            timeout=int(config.timeout_s * 1000),  # pyusb counts milliseconds
            in_ep=config.usb_in_ep,
            out_ep=config.usb_out_ep,
        )
    if config.connection == "serial":
        if not printer.Serial.is_usable():
            raise DeviceError(f"{config.describe()}: pyserial is missing; pip install pyserial")
        return printer.Serial(
            config.serial_port,
            baudrate=config.baudrate,
            timeout=config.timeout_s,
            dsrdtr=config.flow_control == "dsrdtr",
            xonxoff=config.flow_control == "xonxoff",
        )
    if config.connection == "network":
        return printer.Network(config.host, port=config.port, timeout=config.timeout_s)
    return printer.File(config.device_file, auto_flush=True)


class EscposPrinter:
    """A receipt printer reached through python-escpos, owned by one worker thread."""

    def __init__(self, config: EscposPrinterConfig) -> None:
        self.config = config
        self.label = config.describe()
        self._executor: ThreadPoolExecutor | None = None
        self._device: Escpos | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._notice: Notice | None = None
        # one link at a time: a job arriving while the reconnect loop is opening waits for it
        self._connect_lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._device is not None

    async def open(self, notice: Notice | None = None) -> None:
        """Start the worker and connect; an absent printer is retried in the background.

        Raises:
            DeviceError: the connection's Python package is missing (a set-up error).
        """
        make_connector(self.config)  # fail now on a missing library, not on every retry
        self._notice = notice
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="printer-escpos")
        self._connect_lock = asyncio.Lock()  # fresh for this event loop
        try:
            await self._connect()
        except DeviceError as exc:
            log.warning("%s; retrying in the background", exc)
            self._start_reconnect()

    async def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        if self._executor is None:
            return
        device, self._device = self._device, None
        if device is not None:
            await self._run(_close_quietly, device)
        self._executor.shutdown(wait=False)
        self._executor = None

    async def __aenter__(self) -> EscposPrinter:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def print_job(self, name: str, data: bytes) -> None:
        """Send one job's bytes.

        Raises:
            DeviceError: the printer is closed, unreachable, out of paper, or the write failed;
                the message names the device and what to do.
        """
        if self._executor is None:
            raise DeviceError(f"{self.label}: print_job before open(); open the printer first")
        if self._device is None:
            try:
                await self._connect()
            except DeviceError as exc:
                self._start_reconnect()
                raise DeviceError(f"{exc}; job {name} not printed") from exc
        if self.config.check_paper and await self.paper_status() is PaperStatus.OUT:
            raise DeviceError(f"{self.label}: paper out; load a new roll (job {name} not printed)")
        device = self._device
        if device is None:  # the status query found the link dead
            self._start_reconnect()
            raise DeviceError(f"{self.label}: connection lost; job {name} not printed")
        try:
            await self._run(_write, device, data)
        except (OSError, _escpos_error()) as exc:
            self._drop(device)
            raise DeviceError(
                f"{self.label}: write failed ({exc}); job {name} not printed"
            ) from exc
        log.debug("%s: job %s sent, %d bytes", self.label, name, len(data))

    async def paper_status(self) -> PaperStatus:
        """DLE EOT 4 with `status_timeout_s`: no reply, or no link, is UNKNOWN, never OK."""
        device = self._device
        if device is None or self._executor is None:
            return PaperStatus.UNKNOWN
        try:
            reply = await self._run(_query, device, self.config, DLE_EOT_PAPER)
        except (OSError, _escpos_error()) as exc:
            log.warning("%s: status query failed: %s", self.label, exc)
            self._drop(device)
            return PaperStatus.UNKNOWN
        status = parse_paper_status(reply)
        log.debug("%s: DLE EOT 4 -> %s = %s", self.label, reply.hex(), status.name)
        return status

    # ------------------------------------------------------------------ link

    async def _run(self, function: Callable[..., _T], *args: object) -> _T:
        if self._executor is None:
            raise DeviceError(f"{self.label}: the printer is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def _connect(self) -> None:
        """Open the link, unless another caller (a job, the reconnect loop) opened it meanwhile.

        Without the lock both would open one and the later would replace the earlier, leaving a
        second connection to a printer that may serve only one.
        """
        async with self._connect_lock:
            if self._device is not None:
                return
            device = make_connector(self.config)
            try:
                await self._run(_open, device, self.config)
            except (OSError, RuntimeError, _escpos_error()) as exc:
                raise DeviceError(f"{self.label}: cannot connect: {_first_line(exc)}") from exc
            self._device = device
        log.info("%s connected", self.label)

    def _drop(self, device: Escpos) -> None:
        """Forget a failed link (closing it on the worker) and start reconnecting."""
        if self._device is device:
            self._device = None
            if self._executor is not None:
                self._executor.submit(_close_quietly, device)
        self._start_reconnect()

    def _start_reconnect(self) -> None:
        if self._executor is not None and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.get_running_loop().create_task(
                supervise_task(
                    self.label, self._reconnect_loop, notice=self._notice, restart=RESTART
                )
            )

    async def _reconnect_loop(self) -> None:
        pauses = Backoff(
            first_s=self.config.reconnect_min_s, max_s=self.config.reconnect_max_s
        ).pauses()
        pause = next(pauses)
        while self._device is None and self._executor is not None:
            await asyncio.sleep(pause)
            if self._device is not None:
                return
            try:
                await self._connect()
            except DeviceError as exc:
                pause = next(pauses)
                log.debug("%s; next try in %.1f s", exc, pause)


# ---------------------------------------------------------------------- worker thread only


def _escpos_error() -> type[Exception]:
    from escpos.exceptions import Error

    error: type[Exception] = Error
    return error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split("\n")[:2]) or type(exc).__name__


def _open(device: Escpos, config: EscposPrinterConfig) -> None:
    device.open()
    if config.connection == "serial":
        device.device.write_timeout = config.timeout_s  # a stalled handshake must not hang


def _close_quietly(device: Escpos) -> None:
    try:
        device.close()
    except (OSError, _escpos_error()) as exc:
        log.debug("closing the printer link: %s", exc)


def _write(device: Escpos, data: bytes) -> None:
    device._raw(data)
    flush = getattr(device, "flush", None)  # File buffers until flushed
    if flush is not None:
        flush()


def _query(device: Escpos, config: EscposPrinterConfig, command: bytes) -> bytes:
    """Send a real-time status command and read the answer, or b"" after `status_timeout_s`.

    Input waiting from before is read away first: a late answer to an earlier query would
    otherwise be taken for this one.
    """
    timeout = config.status_timeout_s
    if config.connection == "network":
        return _query_socket(device.device, command, timeout, config.timeout_s)
    if config.connection == "serial":
        return _query_serial(device.device, command, timeout, config.timeout_s)
    if config.connection == "usb":
        return _query_usb(device.device, config, command)
    return b""  # a device file cannot be read


def _query_socket(sock: socket.socket, command: bytes, timeout: float, restore: float) -> bytes:
    try:
        sock.setblocking(False)
        while sock.recv(64):
            pass
        raise ConnectionError("the printer closed the connection")
    except BlockingIOError:
        pass
    try:
        sock.settimeout(timeout)
        sock.sendall(command)
        reply = sock.recv(16)
        if not reply:
            raise ConnectionError("the printer closed the connection")
        return reply
    except TimeoutError:
        return b""
    finally:
        sock.settimeout(restore)


def _query_serial(port: object, command: bytes, timeout: float, restore: float) -> bytes:
    import serial

    assert isinstance(port, serial.Serial)
    port.reset_input_buffer()
    port.write(command)
    port.timeout = timeout
    try:
        first = port.read(1)  # waits up to `timeout`; read(16) would always wait it out
        return first + port.read(port.in_waiting) if first else b""
    finally:
        port.timeout = restore


def _query_usb(usb_device: object, config: EscposPrinterConfig, command: bytes) -> bytes:
    import usb.core

    assert isinstance(usb_device, usb.core.Device)
    in_ep, wait_ms = config.usb_in_ep, max(1, int(config.status_timeout_s * 1000))
    try:
        while usb_device.read(in_ep, 64, 1):
            pass
    except usb.core.USBTimeoutError:
        pass
    usb_device.write(config.usb_out_ep, command, int(config.timeout_s * 1000))
    try:
        return bytes(usb_device.read(in_ep, 16, wait_ms))
    except usb.core.USBTimeoutError:
        return b""


BACKEND = Backend(config=EscposPrinterConfig, factory=EscposPrinter)
