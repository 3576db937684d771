"""The text customer display on a pty and on a file: frames, newest screen wins, reconnects."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.tty_display import TtyDisplay, TtyDisplayConfig, frame
from pos_terminal.ports import Screen

pytestmark = pytest.mark.anyio


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def read_available(fd: int, settle_s: float = 0.3) -> bytes:
    data = b""
    while select.select([fd], [], [], settle_s)[0]:
        data += os.read(fd, 4096)
    return data


def test_a_frame_is_title_amount_then_lines_cut_to_the_display() -> None:
    screen = Screen("请付款 Please pay", amount_fen=1234, lines=("扫码 scan", "third"))
    # 请付款 takes 6 columns, so 12 columns hold "请付款 Pleas"
    assert frame(screen, columns=12, rows=2) == ["请付款 Pleas", "￥12.34"]
    four = ["请付款 Please pay", "￥12.34", "扫码 scan", "third"]
    assert frame(screen, columns=20, rows=4) == four
    # a wide character that does not fit whole is left out, never split
    assert frame(Screen("ab请"), columns=3, rows=1) == ["ab"]


@given(
    title=st.text(max_size=40),
    lines=st.lists(st.text(max_size=40), max_size=5),
    columns=st.integers(8, 80),
    rows=st.integers(1, 16),
)
def test_every_frame_line_is_a_prefix_that_fits(
    title: str, lines: list[str], columns: int, rows: int
) -> None:
    wanted = [title, *lines][:rows]
    shown = frame(Screen(title, lines=tuple(lines)), columns, rows)
    assert len(shown) == len(wanted)
    for line, source in zip(shown, wanted, strict=True):
        assert source.startswith(line) and len(line) <= columns
        if source.isascii() and len(source) <= columns:
            assert line == source  # plain text that fits is shown whole


async def test_each_screen_reaches_a_pty_as_clear_then_lines(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        display = TtyDisplay(TtyDisplayConfig(device=os.ttyname(slave), baud=19200))
        await display.open()
        display.show(Screen("欢迎 Welcome", lines=("T0001",)))
        wait_for(lambda: bool(select.select([master], [], [], 0)[0]))
        assert read_available(master) == b"\x0c" + "欢迎 Welcome".encode("gb18030") + b"\r\nT0001"
        await display.close()
    finally:
        os.close(master)
        os.close(slave)


async def test_a_missing_device_is_a_notice_and_is_written_once_it_appears(
    tmp_path: Path,
) -> None:
    path = tmp_path / "display"
    notices: list[tuple[str, str]] = []
    display = TtyDisplay(TtyDisplayConfig(device=str(path), reconnect_s=0.05, encoding="ascii"))
    await display.open(lambda device, message: notices.append((device, message)))
    display.show(Screen("first"))
    display.show(Screen("Total", amount_fen=500))  # the newest screen wins
    wait_for(lambda: bool(notices))
    assert notices[0][0] == "display" and str(path) in notices[0][1]
    path.touch()
    wait_for(lambda: path.stat().st_size > 0)
    await display.close()
    assert path.read_bytes() == b"\x0cTotal\r\n?5.00"  # ascii has no ￥
    assert notices[-1] == ("display", "")
    assert len(notices) == 2  # one notice for the trouble, one once it cleared


async def test_a_cashiers_screen_is_never_written_to_the_pole_display(tmp_path: Path) -> None:
    path = tmp_path / "display"
    path.touch()
    display = TtyDisplay(TtyDisplayConfig(device=str(path), encoding="ascii"))
    await display.open()
    display.show(Screen("Please wait"), Screen("Supervisor PIN", lines=("****",)))
    wait_for(lambda: path.stat().st_size > 0)
    await display.close()
    assert path.read_bytes() == b"\x0cPlease wait"
