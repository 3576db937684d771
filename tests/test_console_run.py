"""`pos-terminal run` in a terminal of its own, as a cashier meets it: keys typed into a pty."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from pos_terminal.journal import FINAL_STATES, Journal, PaymentRow, RowState

ROOT = Path(__file__).parents[1]
CLEAR = "\x1b[H\x1b[2J"


class Terminal:
    """The program on a pty that is its controlling terminal; `screen` is everything shown."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
            os.execve(sys.executable, [sys.executable, "-m", "pos_terminal.cli", *args], env)
        self.shown = b""
        self.status: int | None = None

    @property
    def screen(self) -> str:
        return self.shown.decode(errors="replace")

    @property
    def frame(self) -> str:
        """What is on screen now: everything since the last clear."""
        return self.screen.rpartition(CLEAR)[2]

    def type(self, data: bytes, pause_s: float = 0.3) -> None:
        os.write(self.fd, data)
        self.read(pause_s)

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the program has ended and closed the terminal
                chunk = b""
            if not chunk:
                return
            self.shown += chunk

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.frame:
            assert time.monotonic() < deadline, f"{text!r} never shown; last frame:\n{self.frame}"
            self.read(0.2)

    def wait_exit(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.read(0.1)
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        self.kill()
        raise AssertionError(f"still running after {timeout} s:\n{self.frame}")

    def kill(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            self.status = -signal.SIGKILL


def rows_of(path: Path) -> list[PaymentRow]:
    journal = Journal(path)
    journal.open()
    try:
        return journal.rows()
    finally:
        journal.close()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The laptop config, with a slow customer who stays USERPAYING and quick reverses."""
    text = (ROOT / "config" / "terminal.yaml").read_text(encoding="utf-8")
    text = text.replace("userpaying_s: 8 ", "userpaying_s: 60 ")
    text = text.replace("reverse_min_delay_s: 15 ", "reverse_min_delay_s: 1 ")
    assert "userpaying_s: 60" in text and "reverse_min_delay_s: 1 " in text
    config = tmp_path / "terminal.yaml"
    config.write_text(text, encoding="utf-8")
    return config


def printed_at(path: Path, after: int = 0, timeout: float = 20) -> int:
    """When the receipt file was (re)written, waiting for a write later than `after`."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_mtime_ns > after):
        assert time.monotonic() < deadline, f"{path.name} was not printed"
        time.sleep(0.1)
    return path.stat().st_mtime_ns


def started(cwd: Path, config: Path) -> Terminal:
    term = Terminal(cwd, "run", "--config", str(config))
    term.wait_for("欢迎光临 Welcome")
    return term


def test_function_keys_arrows_and_alt_keys_leave_the_sale_and_only_a_lone_esc_cancels(
    tmp_path: Path, shop: Path
) -> None:
    term = started(tmp_path, shop)
    try:
        term.type(b"1234\r\r")
        term.wait_for("State: AWAITING_PAYMENT")
        for keys in (b"\x1bOP", b"\x1b[A", b"\x1bx", b"\x1b\x1b[D", b"\x1b[[A", b"\x1b[1;5C"):
            term.type(keys)
        term.type(b"\x1b[1", pause_s=0.02)  # F5 in two pieces, close together
        term.type(b"5~", pause_s=0.5)
        assert "State: AWAITING_PAYMENT" in term.frame
        assert "key ignored: ESC [ 1 5 ~" in term.frame
        term.type(b"\x1b", pause_s=0.5)  # Esc on its own: the cashier cancels
        term.wait_for("State: IDLE")
    finally:
        term.kill()


def test_the_scan_keys_play_the_last_receipt_qr_and_a_typed_code(
    tmp_path: Path, shop: Path
) -> None:
    term = started(tmp_path, shop)
    try:
        term.type(b"l")
        assert "no sale's receipt to scan yet" in term.frame
        term.type(b"500\r\rw")  # ¥5.00 paid with a WeChat code
        term.wait_for("State: IDLE", timeout=30)
        [sale] = rows_of(tmp_path / "var" / "journal.sqlite")
        term.type(b"l", pause_s=1.0)  # the scanner reads its receipt's QR: a reprint
        term.wait_for(f"scanned the receipt QR of {sale.out_trade_no}")
        reprint = tmp_path / "var" / "receipts" / f"{sale.out_trade_no}-reprint.bin"
        first = printed_at(reprint)
        term.type(b"c" + sale.out_trade_no[-6:].encode())
        assert sale.out_trade_no[-6:] in term.frame and "State: IDLE" in term.frame
        term.type(b"\x1b", pause_s=0.5)  # Esc leaves the prompt, not the sale
        term.type(b"Q")  # Caps Lock on: still the QR key
        assert "State: IDLE" in term.frame  # nothing keyed: no sale to show a QR for
        term.type(b"c" + sale.out_trade_no.encode() + b"\r", pause_s=1.0)  # typed whole: scanned
        term.wait_for(f"scanned: {sale.out_trade_no}")
        printed_at(reprint, after=first)  # reprinted again
    finally:
        term.kill()
    assert "重印" in reprint.with_suffix(".txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("stop", "status"), [(b"\x03", -signal.SIGINT), (None, -signal.SIGTERM)])
def test_stopping_mid_payment_clears_the_screen_names_the_payment_and_the_next_start_settles_it(
    tmp_path: Path, shop: Path, stop: bytes | None, status: int
) -> None:
    term = started(tmp_path, shop)
    try:
        term.type(b"4001\r\rs")  # ¥40.01, the customer types a password (USERPAYING)
        term.wait_for("State: CHARGING_CODE", timeout=30)
        if stop is None:
            os.kill(term.pid, signal.SIGTERM)
        else:
            term.type(stop, pause_s=0)  # Ctrl-C on the keyboard: the terminal sends SIGINT
        assert term.wait_exit() == status
    finally:
        term.kill()
    journal = tmp_path / "var" / "journal.sqlite"
    [row] = rows_of(journal)
    assert row.state not in FINAL_STATES
    after = term.frame
    assert "█" not in after and "¥40.01" in after  # no QR code or frame left, the payment named
    assert f"Payment in progress: order {row.out_trade_no} ¥40.01" in after
    assert "resolved at the next start" in after
    assert ("Ctrl-C" if stop else "SIGTERM") in after

    again = Terminal(tmp_path, "run", "--config", str(shop))
    try:  # recovery resolves it and says so before Welcome
        again.wait_for("已撤销 Reversed")
        assert row.out_trade_no[-8:] in again.frame and "¥40.01" in again.frame
        again.type(b"\r")
        again.wait_for("欢迎光临 Welcome")
        [row] = rows_of(journal)
        assert row.state is RowState.REVERSED
        os.kill(again.pid, signal.SIGTERM)
        assert again.wait_exit() == -signal.SIGTERM
        assert "No payment or refund was in flight" in again.frame
    finally:
        again.kill()


def test_closing_the_window_mid_payment_stops_in_order_and_the_log_names_the_payment(
    tmp_path: Path, shop: Path
) -> None:
    term = started(tmp_path, shop)
    try:
        term.type(b"4001\r\rs")
        term.wait_for("State: CHARGING_CODE", timeout=30)
    except BaseException:
        term.kill()
        raise
    os.close(term.fd)  # the window closes: the kernel hangs the terminal up (SIGHUP)
    deadline = time.monotonic() + 60
    while not (done := os.waitpid(term.pid, os.WNOHANG))[0]:
        assert time.monotonic() < deadline, "still running after its terminal was closed"
        time.sleep(0.1)
    term.status = os.waitstatus_to_exitcode(done[1])
    assert term.status == -signal.SIGHUP
    [row] = rows_of(tmp_path / "var" / "journal.sqlite")
    log = (tmp_path / "var" / "pos-terminal.log").read_text(encoding="utf-8")
    assert "Stopped (SIGHUP)" in log
    assert f"Payment in progress: order {row.out_trade_no} ¥40.01" in log
    assert "Traceback" not in log
