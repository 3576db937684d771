"""The laptop simulator's screen and keyboard.

The keyboard is the cashier keypad plus a few keys that play the customer; the screen shows the
customer display (with the QR code), the machine state, the last receipt and the key help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
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
from pos_terminal.console_keys import ESC, ESC_TIMEOUT_S, KeyDecoder
from pos_terminal.machine import Phase
from pos_terminal.payment_codes import mask_code
from pos_terminal.ports import Key, Screen
from pos_terminal.receipt import display_width
from pos_terminal.runtime import Runtime, View

log = logging.getLogger(__name__)

HELP = (
    "收银 Cashier: 0-9 . amount · Enter confirm · Backspace · Del clear · Esc cancel",
    "              q show QR · r reprint the last receipt · f refund (supervisor PIN)",
    "扫码 Scanner: l scan the last sale's receipt QR · c type a code to scan",
    "顾客 Customer: w show WeChat code · s pay slowly (password) · n code, no balance",
    "               p scan & pay the QR on screen · Ctrl-C quit",
)
CASHIER_KEYS = {
    "\r": Key.ENTER,
    "\n": Key.ENTER,
    "\x1bOM": Key.ENTER,  # keypad Enter in application mode
    "\x7f": Key.BACKSPACE,
    "\x08": Key.BACKSPACE,
    "\x1b[3~": Key.CLEAR,  # Del
    ".": Key.POINT,
    "\x1bOn": Key.POINT,  # keypad point in application mode
    "\uff0e": Key.POINT,  # full-width point from an IME
    ESC: Key.CANCEL,  # a lone Esc only: the decoder keeps sequences whole
    "q": Key.QR,
    "r": Key.REPRINT,
    "f": Key.REFUND,
}
WALLETS = {"w": Wallet.PAID, "s": Wallet.SLOW, "n": Wallet.NOT_ENOUGH}
# digits as the keypad (application mode: ESC O p..y) and a full-width IME (０-９) send them
DIGITS = {
    **{d: d for d in "0123456789"},
    **{f"\x1bO{chr(ord('p') + n)}": str(n) for n in range(10)},
    **{chr(0xFF10 + n): str(n) for n in range(10)},
}
CODE_PROMPT = "扫码 Scan: type the code, Enter scans, Esc stops: "
LEFT_WIDTH = 46
CLEAR = "\x1b[H\x1b[2J"  # cursor home, erase the screen


def qr_lines(data: str, border: int = 2) -> list[str]:
    """A QR code drawn with half blocks, light modules in the foreground colour."""
    matrix = [list(row) for row in segno.make(data, error="m").matrix]
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
    """The customer display's text as lines (its QR, when there is one, is drawn beside)."""
    lines = [screen.title]
    if screen.amount_fen is not None:
        lines.append(f"   {money.format_yuan(screen.amount_fen)}")
    lines.extend(line for line in screen.lines if line)
    return lines


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns (CJK counts 2), broken at spaces where it can."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if display_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # a word wider than the line is cut where it must be
            if display_width(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    return [*lines, line] if line or not lines else lines


def _wrapped(screen: Screen) -> list[str]:
    return [piece for line in screen_lines(screen) for piece in wrap(line, LEFT_WIDTH - 3)]


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _fit(text: str, width: int) -> str:
    """`text` cut to `width` columns, marked with … when cut."""
    if display_width(text) <= width:
        return text
    while display_width(text) > width - 1:
        text = text[:-1]
    return text + "…"


def _column(title: str, lines: list[str], width: int, rows: int) -> list[str]:
    """A titled column of at most `rows` lines; lines that do not fit are counted at the end."""
    body = [f"│ {line}" for line in lines]
    if len(body) + 1 > rows:
        kept = max(0, rows - 2)
        body = [*body[:kept], f"│ … {len(lines) - kept} more lines"]
    return [_fit(line, width) for line in [f"┌─ {title} ─", *body]]


def compose(view: View, status: str, size: tuple[int, int] = (80, 24)) -> str:
    """The whole console frame as text, fitting a terminal of `size` (columns, rows; 80x24 at
    least): the state line, the customer display beside the QR it shows or the last receipt, the
    keys, the status line."""
    width, height = max(size[0], 80), max(size[1], 24)
    footer = [*HELP, _fit(status, width)]
    rows = height - 1 - len(footer)
    if rows > 17:
        footer.insert(0, "")
        rows -= 1
    left = _column("顾客显示屏 Customer display", _wrapped(view.screen), LEFT_WIDTH, rows)
    if view.cashier_screen != view.screen:  # a supervisor's prompt: the cashier's eyes only
        cashier = _wrapped(view.cashier_screen)
        left = [*_column("收银员 Cashier", cashier, LEFT_WIDTH, rows - len(left)), *left]
    right_width = width - LEFT_WIDTH
    if view.screen.qr:
        qr = qr_lines(view.screen.qr)
        if len(qr) + 1 > rows or display_width(qr[0]) > right_width - 2:
            qr = qr_lines(view.screen.qr, border=1)
        right = _column("顾客扫码 Customer scans", qr, right_width, rows)
    else:
        right = _column("上一张小票 Last receipt", list(view.receipt_lines), right_width, rows)
    body = [
        _pad(left[i] if i < len(left) else "", LEFT_WIDTH) + (right[i] if i < len(right) else "")
        for i in range(max(len(left), len(right)))
    ]
    return "\n".join([_fit(_state_line(view), width), *body, *footer])


def _state_line(view: View) -> str:
    state = view.state
    line = f"状态 State: {state.phase}"
    if state.notice:
        line += f" · {state.notice}"
    if state.printer_notice:
        line += f" · 打印机需要处理 Printer needs attention: {state.printer_notice}"
    for device, message in state.device_notices:
        line += f" · 设备 {device}: {message}"
    return line


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
        self._decoder = KeyDecoder()
        self._esc_timer: asyncio.TimerHandle | None = None
        self._typed: str | None = None  # the code being typed after `c`, None when not asked

    def draw(self, view: View | None = None) -> None:
        rt = self.runtime
        view = view or View(rt.state, rt.screen, rt.receipt_lines, rt.cashier_screen)
        size = shutil.get_terminal_size()
        frame = compose(view, self.status, (size.columns, size.lines))
        with _unless_hung_up():  # no newline after the last row: it would scroll the frame
            self.out.write(CLEAR + frame.replace("\n", "\r\n"))
            self.out.flush()

    @contextlib.contextmanager
    def attached(self, stdin: TextIO = sys.stdin) -> Iterator[None]:
        """Raw keyboard, redraws on each runtime step; the terminal is restored on exit."""
        fd = stdin.fileno()
        saved = termios.tcgetattr(fd)
        loop = asyncio.get_running_loop()
        tty.setcbreak(fd)
        mode = termios.tcgetattr(fd)
        mode[tty.IFLAG] &= ~termios.IXON  # Ctrl-S would freeze the screen until Ctrl-Q
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        self.runtime.observers.append(self.draw)
        loop.add_reader(fd, self._on_input, fd)
        self.draw()
        try:
            yield
        finally:
            loop.remove_reader(fd)
            if self._esc_timer is not None:
                self._esc_timer.cancel()
            self.runtime.observers.remove(self.draw)
            with _unless_hung_up():
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
                self.out.write(CLEAR)  # no QR left on screen for anyone to pay
                self.out.flush()

    def _on_input(self, fd: int) -> None:
        self.feed(os.read(fd, 256))

    def feed(self, data: bytes) -> None:
        """Raw keyboard bytes: keys now, and a trailing Esc once nothing follows it in time."""
        if self._esc_timer is not None:
            self._esc_timer.cancel()
            self._esc_timer = None
        for key in self._decoder.feed(data):
            self.handle_key(key)
        if self._decoder.pending:
            loop = asyncio.get_running_loop()
            self._esc_timer = loop.call_later(ESC_TIMEOUT_S, self._esc_timed_out)

    def _esc_timed_out(self) -> None:
        self._esc_timer = None
        for key in self._decoder.timeout():
            self.handle_key(key)

    def handle_key(self, key: str) -> None:
        """Map one key (a character or a whole escape sequence) to a keypad press, a scan or a
        customer action. Letters count in either case (Caps Lock); other sequences are ignored."""
        if self._typed is not None:
            return self._type_code(key)
        key = key.lower() if len(key) == 1 else key
        if key in DIGITS:
            self.keypad.press(DIGITS[key])
        elif key in CASHIER_KEYS:
            self.keypad.press(CASHIER_KEYS[key])
        elif key in WALLETS:
            self._spawn(self._present_code(WALLETS[key]))
        elif key == "p":
            self._spawn(self._pay_qr())
        elif key == "l":
            self._spawn(self._scan_last_receipt())
        elif key == "c":
            self._typed = ""
            self._say(CODE_PROMPT)
        elif key.startswith(ESC):
            self._say(f"忽略按键 key ignored: {_printable(key)}")

    def _type_code(self, key: str) -> None:
        """A key while the cashier types a code for the scanner (after `c`)."""
        typed = self._typed or ""
        action = CASHIER_KEYS.get(key)
        if action in (Key.ENTER, Key.CANCEL):
            self._typed = None
            if action is Key.ENTER and typed:
                self.scanner.scan(typed)
                return self._say(f"已扫码 scanned: {_shown_code(typed)}")
            return self._say("")
        if action is Key.BACKSPACE:
            typed = typed[:-1]
        elif key in DIGITS:
            typed += DIGITS[key]
        elif len(key) == 1 and key.isprintable():
            typed += key
        self._typed = typed
        self._say(CODE_PROMPT + typed)

    async def _scan_last_receipt(self) -> None:
        """The scanner reads the QR of the latest approved sale's receipt (its order number)."""
        row = await self.runtime.journal(lambda j: j.latest_sale())
        if row is None:
            return self._say("扫码: 还没有小票 no sale's receipt to scan yet")
        self.scanner.scan(row.out_trade_no)
        self._say(f"已扫小票二维码 scanned the receipt QR of {row.out_trade_no}")

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


def _printable(key: str) -> str:
    """An escape sequence as text: `ESC [ 1 1 ~` for F1 on rxvt."""
    return " ".join("ESC" if c == ESC else repr(c)[1:-1] for c in key)


def _shown_code(code: str) -> str:
    """A payment code is a bearer token: masked; anything else (an order number) as typed."""
    return mask_code(code) if code.isascii() and code.isdigit() and len(code) >= 16 else code


def _unless_hung_up() -> contextlib.AbstractContextManager[None]:
    """Terminal output that may fail once the window is closed (SIGHUP is on its way)."""
    return contextlib.suppress(OSError, termios.error)
