"""A terminal on mock devices against a sandbox over real HTTP, for flow tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from hw_mocks.customer import MockCustomer
from hw_mocks.display import MockDisplay
from hw_mocks.keypad import MockKeypad
from hw_mocks.printer import MockPrinter
from hw_mocks.scanner import MockScanner
from pos_terminal.app import Terminal, open_terminal
from pos_terminal.config import Config, parse_config
from pos_terminal.journal import PaymentRow
from pos_terminal.machine import Key, Phase, State

FAST_TIMINGS = """\
payment:
  code_poll_interval_s: 0.1
  code_deadline_s: {deadline}
  reverse_min_delay_s: 0.3
  qr_poll_interval_s: {qr_poll}
  qr_expiry_s: 30
  retry_backoff_s: 0.05
screen:
  awaiting_timeout_s: 60
  result_hold_s: 30
"""


def flow_config(
    tmp: Path,
    *,
    sandbox_url: str | None = None,
    merchant_json: Path | None = None,
    deadline: float = 3.0,
    qr_poll: float = 0.1,
    userpaying_s: float = 0.5,
    primary_url: str | None = None,
) -> Config:
    """Fast timings; the in-process sandbox, or an external one when `sandbox_url` is given
    (behind `primary_url` as the primary host when that is given too)."""
    if sandbox_url is None:
        wechat = f"""\
wechat:
  sandbox:
    enabled: true
    state_dir: {tmp / "sandbox"}
    userpaying_s: {userpaying_s}
"""
    else:
        wechat = f"""\
wechat:
  merchant_file: {merchant_json}
  hosts: [{", ".join(u for u in (primary_url, sandbox_url) if u)}]
  connect_timeout_s: 0.5
  read_timeout_s: 2
"""
    text = f"""\
merchant:
  name: 好邻居便利店（南京西路店）
  store_id: SH-0001
  terminal_id: T0001
devices:
  printer:
    out_dir: {tmp / "receipts"}
    check_interval_s: 0.1
journal:
  path: {tmp / "journal.sqlite"}
{wechat}{FAST_TIMINGS.format(deadline=deadline, qr_poll=qr_poll)}"""
    return parse_config(text, "flow-test.yaml")


@dataclass
class Harness:
    terminal: Terminal
    customer: MockCustomer
    sandbox_url: str

    @property
    def keypad(self) -> MockKeypad:
        assert isinstance(self.terminal.devices.keypad, MockKeypad)
        return self.terminal.devices.keypad

    @property
    def scanner(self) -> MockScanner:
        assert isinstance(self.terminal.devices.scanner, MockScanner)
        return self.terminal.devices.scanner

    @property
    def display(self) -> MockDisplay:
        assert isinstance(self.terminal.devices.display, MockDisplay)
        return self.terminal.devices.display

    @property
    def printer(self) -> MockPrinter:
        assert isinstance(self.terminal.devices.printer, MockPrinter)
        return self.terminal.devices.printer

    async def until(self, predicate: Callable[[State], bool], timeout: float = 20.0) -> State:
        return await self.terminal.runtime.wait_until(predicate, timeout)

    async def ring_up(self, digits: str) -> None:
        await self.until(lambda s: s.phase in (Phase.IDLE, Phase.APPROVED, Phase.DECLINED))
        self.keypad.type_amount(digits)
        self.keypad.press(Key.ENTER, Key.ENTER)
        await self.until(lambda s: s.phase is Phase.AWAITING_PAYMENT)

    async def show_qr(self) -> str:
        self.keypad.press(Key.QR)
        state = await self.until(lambda s: s.phase is Phase.SHOWING_QR and s.code_url is not None)
        assert state.code_url is not None
        return state.code_url

    async def result(self) -> State:
        return await self.until(lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED))

    async def rows(self) -> list[PaymentRow]:
        return await self.terminal.runtime.journal(lambda j: j.rows())

    async def remote(self, out_trade_no: str) -> str:
        """The sandbox's own view of an order's trade_state ("absent" when it has none)."""
        async with httpx.AsyncClient(base_url=self.sandbox_url) as http:
            answer = await http.get(f"/sandbox/orders/{out_trade_no}")
        return str(answer.json()["trade_state"]) if answer.status_code == 200 else "absent"


@contextlib.asynccontextmanager
async def running(config: Config, *, sandbox_url: str | None = None) -> AsyncIterator[Harness]:
    """Start the terminal, wait until it is ready, stop it on exit."""
    async with open_terminal(config) as terminal:
        url = sandbox_url or (terminal.sandbox.base_url if terminal.sandbox else "")
        runner = asyncio.create_task(terminal.runtime.run())
        customer = MockCustomer(url)
        try:
            await asyncio.wait_for(terminal.runtime.ready.wait(), 30)
            yield Harness(terminal, customer, url)
        finally:
            await customer.aclose()
            terminal.runtime.stop()
            await runner
