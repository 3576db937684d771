"""The laptop console: key mapping, the drawn frame, and a QR a phone can read off the screen."""

from __future__ import annotations

import numpy as np
import pytest
import zxingcpp

from pos_terminal.console import compose, qr_lines, screen_lines
from pos_terminal.machine import Phase, Sale, Session, State, Supervisor
from pos_terminal.ports import Screen
from pos_terminal.receipt import display_width
from pos_terminal.runtime import View


def test_the_qr_drawn_in_text_decodes_to_the_code_url() -> None:
    url = "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"
    rows = qr_lines(url)
    # turn the half blocks back into pixels: 4x4 per module so the decoder sees a clean image
    top = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}
    pixels = []
    for row in rows:
        upper = [top[c][0] for c in row]
        lower = [top[c][1] for c in row]
        pixels += [upper, lower]
    image = np.kron(np.array(pixels, dtype=np.uint8), np.ones((4, 4), dtype=np.uint8)) * 255
    [found] = zxingcpp.read_barcodes(image)
    assert found.text == url


def test_the_frame_shows_state_display_receipt_and_help() -> None:
    screen = Screen("请付款 Please pay", 1234, ("请出示付款码",))
    frame = compose(View(State(mode=Sale(Phase.AWAITING_PAYMENT)), screen, ("合计 ￥12.34",)), "")
    assert "AWAITING_PAYMENT" in frame
    assert "¥12.34" in frame and "合计 ￥12.34" in frame
    assert "Esc cancel" in frame and "pay slowly" in frame
    assert "l scan the last sale's receipt QR" in frame and "c type a code" in frame
    assert "收银员 Cashier" not in frame  # both see the same screen: it is drawn once


def test_a_supervisor_prompt_is_drawn_for_the_cashier_beside_the_customers_screen() -> None:
    state = State(mode=Supervisor())
    prompt = Screen("主管密码 Supervisor PIN", lines=("**",))
    frame = compose(View(state, Screen("请稍候 Please wait"), (), prompt), "").splitlines()
    left = [
        "┌─ 收银员 Cashier ─",
        "│ 主管密码 Supervisor PIN",
        "│ **",
        "┌─ 顾客显示屏 Customer display ─",
        "│ 请稍候 Please wait",
    ]
    for line, drawn in zip(left, frame[1:6], strict=True):
        assert drawn.startswith(line)


def test_the_frame_shows_each_device_in_trouble() -> None:
    session = Session(device_notices=(("camera decode", "failed (KeyError)"),))
    state = State(session, Sale(Phase.IDLE))
    frame = compose(View(state, Screen("欢迎光临 Welcome"), ()), "")
    assert "camera decode: failed (KeyError)" in frame.splitlines()[0]


def test_screen_lines_are_the_text_and_the_qr_is_drawn_beside_it() -> None:
    url = "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"
    assert screen_lines(Screen("x", 1234, ("", "y"), qr=url)) == ["x", "   ¥12.34", "y"]
    frame = compose(View(State(mode=Sale(Phase.IDLE)), Screen("x", qr=url), ()), "")
    assert qr_lines(url, border=1)[2] in frame and "Customer scans" in frame


LONG_URL = "weixin://wxpay/bizpayurl?pr=" + "Ab3dE6gH9k" * 3


@pytest.mark.parametrize(
    "screen",
    [
        Screen(
            "请付款 Please pay", 999_999_999, ("请出示付款码 Show your payment code",), LONG_URL
        ),
        Screen(
            "扫描小票二维码或输入单号 Scan the receipt QR or type the order no.",
            lines=("1234", "多笔交易匹配 Several sales end in 1234: type more digits"),
        ),
        Screen("x", lines=tuple(f"line {n} " * 8 for n in range(30))),
    ],
)
def test_every_frame_fits_80_by_24_with_title_and_amount_on_top(screen: Screen) -> None:
    receipt = tuple(f"收据 receipt line {n}" for n in range(60))
    state = State(mode=Sale(Phase.AWAITING_PAYMENT, notice="余额不足 Insufficient balance " * 4))
    lines = compose(View(state, screen, receipt), "status " * 20).split("\n")
    assert len(lines) <= 24
    assert all(display_width(line) <= 80 for line in lines), max(lines, key=display_width)
    assert lines[0].startswith("状态 State: AWAITING_PAYMENT")
    assert screen.title.split()[0] in lines[2]
    if screen.amount_fen is not None:
        assert "¥9,999,999.99" in lines[3]
