"""A scripted cashier and customer around a running terminal: the demo, tests and benchmarks.

`running(config)` starts the terminal on mock devices and waits until it is ready; the `Harness`
presses keys, shows payment codes, pays QR codes and reads the journal and the sandbox's view.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from hw_mocks.customer import MockCustomer
from hw_mocks.display import MockDisplay
from hw_mocks.keypad import MockKeypad
from hw_mocks.printer import MockPrinter
from hw_mocks.scanner import MockScanner
from pos_terminal.app import Terminal, open_terminal
from pos_terminal.config import Config
from pos_terminal.journal import PaymentRow
from pos_terminal.machine import Phase, State
from pos_terminal.ports import Key


@dataclass
class Harness:
    terminal: Terminal
    customer: MockCustomer
    sandbox_url: str

    @property
    def keypad(self) -> MockKeypad:
        device = self.terminal.devices.inputs["keypad"]
        assert isinstance(device, MockKeypad)
        return device

    @property
    def scanner(self) -> MockScanner:
        device = self.terminal.devices.inputs["scanner"]
        assert isinstance(device, MockScanner)
        return device

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

    async def acknowledge_recovery(self) -> None:
        """The cashier reads what recovery resolved (when anything was in doubt) and goes on."""
        state = await self.until(lambda s: s.phase is not Phase.RECOVERING)
        if state.phase is Phase.RECOVERED:
            self.keypad.press(Key.ENTER)
            await self.until(lambda s: s.phase is Phase.IDLE)

    async def ring_up(self, digits: str) -> None:
        await self.acknowledge_recovery()
        await self.until(
            lambda s: s.phase in (Phase.IDLE, Phase.APPROVED, Phase.DECLINED, Phase.CANCELLED)
        )
        self.keypad.type_amount(digits)
        self.keypad.press(Key.ENTER, Key.ENTER)
        await self.until(lambda s: s.phase is Phase.AWAITING_PAYMENT)

    async def show_qr(self) -> str:
        self.keypad.press(Key.QR)
        state = await self.until(lambda s: s.phase is Phase.SHOWING_QR and s.code_url is not None)
        assert state.code_url is not None
        return state.code_url

    async def result(self) -> State:
        return await self.until(
            lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED, Phase.CANCELLED)
        )

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
