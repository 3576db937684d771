"""The serial scanner over a real pseudo-terminal: suffixes, partial lines, unplug and replug."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.serial_scanner import LineSplitter, SerialScanner, SerialScannerConfig
from pos_terminal.ports import CodeRead, DeviceEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.anyio
CODE = "134567890123456789"


class Pty:
    """A pseudo-terminal reached through a stable symlink, like /dev/serial/by-id/..."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, slave = os.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        link.unlink(missing_ok=True)
        link.symlink_to(name)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)
        self.link.unlink()


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    device = Pty(tmp_path / "scanner")
    yield device
    with contextlib.suppress(OSError):  # already closed by unplug()
        os.close(device.master)


@pytest.mark.parametrize("suffix, ending", [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n")])
async def test_a_scan_ended_by_the_configured_suffix_is_one_code(
    pty: Pty, suffix: str, ending: bytes
) -> None:
    posted: list[DeviceEvent] = []
    scanner = SerialScanner(SerialScannerConfig(port=str(pty.link), suffix=suffix, baud=115200))  # type: ignore[arg-type]
    await scanner.open(posted.append)
    assert scanner.connected.wait(2.0)
    pty.write(CODE[:7].encode())
    pty.write(CODE[7:].encode() + ending)
    wait_for(lambda: posted != [])
    await scanner.close()
    assert posted == [CodeRead(CODE)]


async def test_the_scanner_is_reopened_after_it_is_unplugged(pty: Pty, tmp_path: Path) -> None:
    posted: list[DeviceEvent] = []
    scanner = SerialScanner(SerialScannerConfig(port=str(pty.link), reconnect_s=0.05))
    await scanner.open(posted.append)
    assert scanner.connected.wait(2.0)
    pty.write(b"111111111111111111\r")
    wait_for(lambda: len(posted) == 1)
    pty.unplug()
    wait_for(lambda: not scanner.connected.is_set())
    replugged = Pty(pty.link)
    wait_for(lambda: scanner.connects == 2)
    replugged.write(b"122222222222222222\r")
    wait_for(lambda: len(posted) == 2)
    await scanner.close()
    os.close(replugged.master)
    assert posted == [CodeRead("111111111111111111"), CodeRead("122222222222222222")]


@pytest.mark.slow
async def test_a_worker_that_raises_is_reported_restarted_and_reads_on(pty: Pty) -> None:
    posted: list[DeviceEvent] = []
    notices: list[tuple[str, str]] = []

    def post(event: DeviceEvent) -> None:
        if not posted:
            posted.append(event)
            raise RuntimeError("the runtime is not running")  # a bug anywhere past the port
        posted.append(event)

    scanner = SerialScanner(SerialScannerConfig(port=str(pty.link)))
    await scanner.open(post, lambda device, message: notices.append((device, message)))
    assert scanner.connected.wait(2.0)
    pty.write(b"111111111111111111\r")
    wait_for(lambda: notices != [])
    wait_for(lambda: scanner.connects == 2)
    pty.write(b"122222222222222222\r")
    wait_for(lambda: len(posted) == 2)
    wait_for(lambda: len(notices) == 2)
    await scanner.close()
    assert posted == [CodeRead("111111111111111111"), CodeRead("122222222222222222")]
    [(device, trouble), fine] = notices
    assert device == "serial scanner" and "RuntimeError" in trouble
    assert fine == ("serial scanner", "")


async def test_a_missing_port_is_retried_until_the_scanner_appears(tmp_path: Path) -> None:
    link = tmp_path / "later"
    scanner = SerialScanner(SerialScannerConfig(port=str(link), reconnect_s=0.05))
    posted: list[DeviceEvent] = []
    await scanner.open(posted.append)
    time.sleep(0.15)
    device = Pty(link)
    assert scanner.connected.wait(2.0)
    device.write(CODE.encode() + b"\r")
    wait_for(lambda: posted != [])
    await scanner.close()
    os.close(device.master)
    assert posted == [CodeRead(CODE)]


async def test_pyserial_loop_urls_work_as_ports() -> None:
    scanner = SerialScanner(SerialScannerConfig(port="loop://"))
    await scanner.open(lambda event: None)
    assert scanner.connected.wait(2.0)
    await scanner.close()


def test_a_partial_line_older_than_the_timeout_is_dropped() -> None:
    split = LineSplitter(b"\r", partial_timeout_s=0.5)
    assert split.feed(b"13456", now=0.0) == []
    assert split.feed(CODE.encode() + b"\r", now=2.0) == [CODE]


def test_several_codes_in_one_read_and_stray_line_feeds() -> None:
    split = LineSplitter(b"\r", partial_timeout_s=0.5)
    assert split.feed(b"\n111\r\n222\r\r", now=0.0) == ["111", "222"]


async def test_the_same_code_sent_twice_within_the_window_is_posted_once(pty: Pty) -> None:
    posted: list[DeviceEvent] = []
    scanner = SerialScanner(SerialScannerConfig(port=str(pty.link), repeat_window_s=2.0))
    await scanner.open(posted.append)
    assert scanner.connected.wait(2.0)
    pty.write(CODE.encode() + b"\r" + CODE.encode() + b"\r122222222222222222\r")
    wait_for(lambda: len(posted) == 2)
    await scanner.close()
    assert posted == [CodeRead(CODE), CodeRead("122222222222222222")]
