"""The laptop console: key mapping, the drawn frame, and a QR a phone can read off the screen."""

from __future__ import annotations

import numpy as np
import zxingcpp

from pos_terminal.console import compose, qr_lines, screen_lines
from pos_terminal.machine import Phase, Sale, Session, State, Supervisor
from pos_terminal.ports import Screen
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


def test_screen_lines_include_the_qr_only_when_present() -> None:
    assert len(screen_lines(Screen("x"))) == 1
    assert len(screen_lines(Screen("x", qr="weixin://wxpay/bizpayurl?pr=abc"))) > 10
