"""The python-escpos printer driver over real transports: TCP on loopback, a pty, a file."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from drivers.printer_escpos import (
    DLE_EOT_PAPER,
    EscposPrinter,
    EscposPrinterConfig,
    PaperStatus,
    make_connector,
    parse_paper_status,
)
from pos_terminal.config_schema import NodeReader
from pos_terminal.errors import ConfigError, DeviceError
from tests.helpers import eventually, wait_for

FAST = {"status_timeout_s": 0.1, "reconnect_min_s": 0.02, "reconnect_max_s": 0.05, "timeout_s": 1.0}
PATIENCE_S = 10.0  # deadline for things that take milliseconds, generous for a loaded machine


class FakeNetworkPrinter:
    """A printer on 127.0.0.1: records what it receives, answers DLE EOT 4 with `status`.

    `status = None` keeps it silent, as many cheap printers are. `stop()` is a printer switched
    off: bytes it has not read yet are lost, so wait for `received` before stopping it.
    """

    def __init__(self, port: int = 0) -> None:
        self.status: int | None = 0x12
        self.received = bytearray()
        self.queries = 0
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                self._talk(conn)
        self._server.close()

    def _talk(self, conn: socket.socket) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([conn], [], [], 0.02)
            if not ready:
                continue
            chunk = conn.recv(4096)
            if not chunk:
                return
            pending += chunk
            while DLE_EOT_PAPER in pending:
                before, _, pending = pending.partition(DLE_EOT_PAPER)
                self.received += before
                self.queries += 1
                if self.status is not None:
                    conn.sendall(bytes([self.status]))
            keep = 2 if pending.endswith(b"\x10\x04") else int(pending.endswith(b"\x10"))
            self.received += pending[: len(pending) - keep]
            pending = pending[len(pending) - keep :]  # a query split over two reads
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=PATIENCE_S)
        assert not self._thread.is_alive(), "fake printer did not stop; its port is still bound"


@pytest.fixture
def net_printer() -> Iterator[FakeNetworkPrinter]:
    fake = FakeNetworkPrinter()
    yield fake
    fake.stop()


def network_config(port: int, **changes: object) -> EscposPrinterConfig:
    return EscposPrinterConfig(
        connection="network", host="127.0.0.1", port=port, **{**FAST, **changes}
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (b"\x12", PaperStatus.OK),
        (b"\x1e", PaperStatus.NEAR_END),
        (b"\x72", PaperStatus.OUT),
        (b"\x7e", PaperStatus.OUT),
        (b"\x16", PaperStatus.NEAR_END),  # a 58 mm clone's answer with one near-end bit
        (b"", PaperStatus.UNKNOWN),
        (b"\xff", PaperStatus.UNKNOWN),  # fixed bits wrong: not a status byte
        (b"\x72\x12", PaperStatus.OK),  # a stale answer in front: the newest counts
    ],
)
def test_dle_eot_4_answers_are_read_as_paper_status(reply: bytes, status: PaperStatus) -> None:
    assert parse_paper_status(reply) is status


def test_network_job_reaches_the_printer_and_paper_is_reported(
    net_printer: FakeNetworkPrinter,
) -> None:
    async def scenario() -> list[PaperStatus]:
        async with EscposPrinter(network_config(net_printer.port)) as printer:
            await printer.print_job("A1", b"\x1b@hello\n")
            seen = [await printer.paper_status()]
            for byte in (0x1E, 0x72):
                net_printer.status = byte
                seen.append(await printer.paper_status())
            return seen

    assert asyncio.run(scenario()) == [PaperStatus.OK, PaperStatus.NEAR_END, PaperStatus.OUT]
    wait_for(lambda: net_printer.received.endswith(b"hello\n"))
    assert bytes(net_printer.received) == b"\x1b@hello\n"


def test_silent_printer_is_unknown_within_the_status_timeout(
    net_printer: FakeNetworkPrinter,
) -> None:
    net_printer.status = None

    async def scenario() -> tuple[PaperStatus, float]:
        async with EscposPrinter(network_config(net_printer.port)) as printer:
            started = time.monotonic()
            status = await printer.paper_status()
            elapsed = time.monotonic() - started
            await printer.print_job("A2", b"still printed\n")  # unknown is not a reason to refuse
            return status, elapsed

    status, elapsed = asyncio.run(scenario())
    assert status is PaperStatus.UNKNOWN and elapsed < 0.5
    wait_for(lambda: b"still printed" in net_printer.received)
    assert b"still printed\n" in net_printer.received


def test_paper_out_refuses_the_job_naming_the_printer(net_printer: FakeNetworkPrinter) -> None:
    net_printer.status = 0x72

    async def scenario() -> None:
        async with EscposPrinter(network_config(net_printer.port)) as printer:
            await printer.print_job("A3", b"lost\n")

    with pytest.raises(DeviceError, match=rf"network printer 127.0.0.1:{net_printer.port}.*paper"):
        asyncio.run(scenario())
    assert b"lost" not in net_printer.received


def test_loop_keeps_running_while_a_query_waits_on_the_printer(
    net_printer: FakeNetworkPrinter,
) -> None:
    net_printer.status = None

    async def scenario() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        async with EscposPrinter(network_config(net_printer.port, status_timeout_s=0.2)) as p:
            task = asyncio.create_task(ticker())
            await p.paper_status()
            task.cancel()
        return ticks

    assert asyncio.run(scenario()) >= 10


def test_printer_that_goes_away_fails_the_job_then_reconnects_when_back() -> None:
    first = FakeNetworkPrinter()
    port = first.port

    async def scenario() -> None:
        async with EscposPrinter(network_config(port, check_paper=False)) as printer:
            await printer.print_job("before", b"one\n")
            # print_job returns once the kernel has the bytes; a printer switched off before
            # reading them loses them, so let it read the job first
            await eventually(lambda: b"one\n" in first.received)
            first.stop()
            deadline = time.monotonic() + PATIENCE_S
            with pytest.raises(DeviceError, match=f"127.0.0.1:{port}"):
                # the kernel may take a write or two after the close, until the peer's RST
                while time.monotonic() < deadline:
                    await printer.print_job("during", b"x" * 4096)
                    await asyncio.sleep(0.01)
            assert not printer.connected
            second = FakeNetworkPrinter(port)
            try:
                # the background reconnect (backoff capped at 0.05 s) finds it, no job needed
                await eventually(lambda: printer.connected)
                await printer.print_job("after", b"two\n")
                await eventually(lambda: b"two\n" in second.received)
            finally:
                second.stop()

    asyncio.run(scenario())
    assert b"one\n" in first.received


def test_absent_printer_does_not_stop_open_and_is_picked_up_later() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    async def scenario() -> bytes:
        async with EscposPrinter(network_config(port)) as printer:
            assert not printer.connected
            assert await printer.paper_status() is PaperStatus.UNKNOWN
            with pytest.raises(DeviceError, match="cannot connect"):
                await printer.print_job("early", b"x\n")
            fake = FakeNetworkPrinter(port)
            try:
                for _ in range(100):
                    if printer.connected:
                        break
                    await asyncio.sleep(0.02)
                await printer.print_job("late", b"late\n")
                wait_for(lambda: b"late" in fake.received)
                return bytes(fake.received)
            finally:
                fake.stop()

    assert asyncio.run(scenario()) == b"late\n"


def test_print_before_open_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="open"):
        asyncio.run(EscposPrinter(network_config(9)).print_job("x", b"x"))


def test_serial_job_and_status_over_a_pty() -> None:
    master, slave = os.openpty()
    received = bytearray()
    stop = threading.Event()

    def printer_side() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.02)
            if ready:
                chunk = os.read(master, 4096)
                received.extend(chunk)
                if DLE_EOT_PAPER in chunk:
                    os.write(master, b"\x1e")

    thread = threading.Thread(target=printer_side, daemon=True)
    thread.start()
    config = EscposPrinterConfig(
        connection="serial",
        serial_port=os.ttyname(slave),
        baudrate=115200,
        **FAST,  # type: ignore[arg-type]
    )

    async def scenario() -> PaperStatus:
        async with EscposPrinter(config) as printer:
            await printer.print_job("S1", "合计 ￥12.50\n".encode("gb18030"))
            return await printer.paper_status()

    try:
        status = asyncio.run(scenario())
        wait_for(lambda: "合计".encode("gb18030") in received)
    finally:
        stop.set()
        thread.join(timeout=2)
        os.close(master)
        os.close(slave)
    assert status is PaperStatus.NEAR_END
    assert "合计 ￥12.50\n".encode("gb18030") in received


def test_serial_port_that_does_not_exist_is_named_in_the_error(tmp_path: Path) -> None:
    config = EscposPrinterConfig(connection="serial", serial_port=str(tmp_path / "ttyNONE"), **FAST)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with EscposPrinter(config) as printer:
            await printer.print_job("S2", b"x\n")

    with pytest.raises(DeviceError, match="ttyNONE"):
        asyncio.run(scenario())


def test_device_file_gets_the_bytes_and_paper_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    config = EscposPrinterConfig(connection="file", device_file=str(path), **FAST)  # type: ignore[arg-type]

    async def scenario() -> PaperStatus:
        async with EscposPrinter(config) as printer:
            await printer.print_job("F1", b"\x1b@file\n")
            return await printer.paper_status()

    assert asyncio.run(scenario()) is PaperStatus.UNKNOWN
    assert path.read_bytes() == b"\x1b@file\n"


def test_usb_connector_is_built_from_ids_and_endpoints_without_io() -> None:
    pytest.importorskip("usb", reason="pyusb is not installed (add pyusb to pyproject)")
    config = EscposPrinterConfig(
        usb_vendor_id=0x0FE6, usb_product_id=0x811E, usb_in_ep=0x82, usb_out_ep=0x01
    )
    connector = make_connector(config)
    assert connector.usb_args == {"idVendor": 0x0FE6, "idProduct": 0x811E}  # type: ignore[attr-defined]
    assert (connector.in_ep, connector.out_ep) == (0x82, 0x01)  # type: ignore[attr-defined]
    assert connector.timeout == 5000  # type: ignore[attr-defined]  # milliseconds for pyusb
    assert config.describe() == "USB printer 0fe6:811e"


def test_config_is_read_from_yaml_with_bounds_and_choices() -> None:
    def read(text: str) -> EscposPrinterConfig:
        config: EscposPrinterConfig = NodeReader("p.yaml").read(
            EscposPrinterConfig, yaml.compose(text, Loader=yaml.SafeLoader), "printer"
        )
        return config

    config = read("connection: network\nhost: 10.0.0.9\nport: 9100\nstatus_timeout_s: 0.2\n")
    assert (config.connection, config.host, config.describe()) == (
        "network",
        "10.0.0.9",
        "network printer 10.0.0.9:9100",
    )
    assert read("usb_vendor_id: 0x0416\n").usb_vendor_id == 0x0416
    with pytest.raises(ConfigError, match="bluetooth"):
        read("connection: bluetooth\n")
    with pytest.raises(ConfigError, match=r"baudrate.*out of range"):
        read("baudrate: 300\n")
    with pytest.raises(ConfigError, match="did you mean 'baudrate'"):
        read("baudrat: 9600\n")
