"""The laptop simulator's screen and keyboard.

The keyboard is the cashier keypad plus a few keys that play the customer; the screen shows the
customer display (with the QR code), the machine state, the last receipt and the key help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import termios
import tty
from collections.abc import Iterator
from typing import TextIO

import segno

from hw_mocks.customer import MockCustomer, Wallet
from hw_mocks.keypad import MockKeypad
from hw_mocks.scanner import MockScanner
from pos_terminal import money
from pos_terminal.machine import Phase
from pos_terminal.payment_codes import mask_code
from pos_terminal.ports import Key, Screen
from pos_terminal.receipt import display_width
from pos_terminal.runtime import Runtime, View

log = logging.getLogger(__name__)

HELP = (
    "收银 Cashier: 0-9 . amount · Enter confirm · Backspace · Del clear · Esc cancel · q show QR",
    "              r reprint the last receipt · f refund (supervisor PIN)",
    "顾客 Customer: w show WeChat code · s pay slowly (password) · n code, no balance",
    "               p scan & pay the QR on screen · Ctrl-C quit",
)
LEFT_WIDTH = 46


def qr_lines(data: str) -> list[str]:
    """A QR code drawn with half blocks, light modules in the foreground colour."""
    matrix = [list(row) for row in segno.make(data, error="m").matrix]
    border = 2
    size = len(matrix) + 2 * border
    light = [[True] * size for _ in range(size)]
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            light[y + border][x + border] = not dark
    if size % 2:
        light.append([True] * size)
    glyphs = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    return [
        "".join(glyphs[top, bottom] for top, bottom in zip(light[y], light[y + 1], strict=True))
        for y in range(0, len(light), 2)
    ]


def screen_lines(screen: Screen) -> list[str]:
    lines = [screen.title]
    if screen.amount_fen is not None:
        lines.append(f"   {money.format_yuan(screen.amount_fen)}")
    lines.extend(screen.lines)
    if screen.qr:
        lines.extend(qr_lines(screen.qr))
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def compose(view: View, status: str) -> str:
    """The whole console frame as text."""
    left = [
        "┌─ 顾客显示屏 Customer display ─",
        *(f"│ {line}" for line in screen_lines(view.screen)),
    ]
    if view.cashier_screen != view.screen:  # a supervisor's prompt: the cashier's eyes only
        left = [
            "┌─ 收银员 Cashier ─",
            *(f"│ {line}" for line in screen_lines(view.cashier_screen)),
            *left,
        ]
    right = ["┌─ 上一张小票 Last receipt ─", *(f"│ {line}" for line in view.receipt_lines)]
    rows = max(len(left), len(right))
    body = [
        _pad(left[i] if i < len(left) else "", LEFT_WIDTH) + (right[i] if i < len(right) else "")
        for i in range(rows)
    ]
    state = f"状态 State: {view.state.phase}"
    if view.state.notice:
        state += f" · {view.state.notice}"
    if view.state.printer_notice:
        state += f" · 打印机需要处理 Printer needs attention: {view.state.printer_notice}"
    for device, message in view.state.device_notices:
        state += f" · 设备 {device}: {message}"
    return "\n".join([state, *body, "", *HELP, status])


class Console:
    """Drives the runtime from the keyboard and redraws on every change."""

    def __init__(
        self,
        runtime: Runtime,
        keypad: MockKeypad,
        scanner: MockScanner,
        customer: MockCustomer,
        out: TextIO = sys.stdout,
    ) -> None:
        self.runtime = runtime
        self.keypad = keypad
        self.scanner = scanner
        self.customer = customer
        self.out = out
        self.status = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def draw(self, view: View | None = None) -> None:
        rt = self.runtime
        view = view or View(rt.state, rt.screen, rt.receipt_lines, rt.cashier_screen)
        frame = compose(view, self.status)
        self.out.write("\x1b[H\x1b[2J" + frame.replace("\n", "\r\n") + "\r\n")
        self.out.flush()

    @contextlib.contextmanager
    def attached(self, stdin: TextIO = sys.stdin) -> Iterator[None]:
        """Raw keyboard, redraws on each runtime step; the terminal is restored on exit."""
        fd = stdin.fileno()
        saved = termios.tcgetattr(fd)
        loop = asyncio.get_running_loop()
        tty.setcbreak(fd)
        self.runtime.observers.append(self.draw)
        loop.add_reader(fd, self._on_input, fd)
        self.draw()
        try:
            yield
        finally:
            loop.remove_reader(fd)
            self.runtime.observers.remove(self.draw)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            self.out.write("\r\n")

    def _on_input(self, fd: int) -> None:
        data = os.read(fd, 64).decode("utf-8", errors="replace")
        for key in _split_keys(data):
            self.handle_key(key)

    def handle_key(self, key: str) -> None:
        """Map one key (or escape sequence) to a keypad press or a customer action."""
        cashier = {
            "\r": Key.ENTER,
            "\n": Key.ENTER,
            "\x7f": Key.BACKSPACE,
            "\x08": Key.BACKSPACE,
            "\x1b[3~": Key.CLEAR,
            ".": Key.POINT,
            "\x1b": Key.CANCEL,
            "q": Key.QR,
            "r": Key.REPRINT,
            "f": Key.REFUND,
        }
        if key.isdigit() and len(key) == 1:
            self.keypad.press(key)
        elif key in cashier:
            self.keypad.press(cashier[key])
        elif key in ("w", "s", "n"):
            wallet = {"w": Wallet.PAID, "s": Wallet.SLOW, "n": Wallet.NOT_ENOUGH}[key]
            self._spawn(self._present_code(wallet))
        elif key == "p":
            self._spawn(self._pay_qr())

    async def _present_code(self, wallet: Wallet) -> None:
        """The scan reaches the machine after any keys typed before it (same queue)."""
        code = await self.customer.present_code(wallet)
        self.scanner.scan(code)
        waiting = self.runtime.state.phase is Phase.AWAITING_PAYMENT
        hint = "" if waiting else " — not awaiting payment"
        self._say(f"顾客出示付款码 customer shows code {mask_code(code)} ({wallet}){hint}")

    async def _pay_qr(self) -> None:
        code_url = self.runtime.state.code_url
        if code_url is None:
            self._say("顾客: 屏幕上没有二维码 no QR on screen (press q first)")
            return
        paid = await self.customer.pay_qr(code_url)
        self._say("顾客已扫码支付 customer paid the QR" if paid else "顾客扫码失败 QR refused")

    def _say(self, text: str) -> None:
        self.status = text
        self.draw()

    def _spawn(self, coro: object) -> None:
        async def guarded() -> None:
            try:
                await coro  # type: ignore[misc]
            except Exception as exc:  # one site per customer action: show it, keep the loop alive
                log.exception("customer action failed")
                self._say(f"顾客操作失败 customer action failed: {exc}")

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _split_keys(data: str) -> list[str]:
    """Split raw input into keys; escape sequences (arrows, Del) stay whole, lone Esc is cancel."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data.startswith("\x1b[", i):
            j = i + 2
            while j < len(data) and not (data[j].isalpha() or data[j] == "~"):
                j += 1
            keys.append(data[i : j + 1])
            i = j + 1
        else:
            keys.append(data[i])
            i += 1
    return keys
