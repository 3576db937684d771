"""`pos-terminal demo`: three scripted sales against the sandbox, one line each, exit 0 if all pass.

1. a Native QR sale paid by the mock customer;
2. a payment-code sale where the customer must type a password (USERPAYING, then paid);
3. a Native QR sale cancelled by the cashier while the QR is shown (the order is closed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from hw_mocks.customer import MockCustomer, Wallet
from hw_mocks.keypad import MockKeypad
from hw_mocks.scanner import MockScanner
from pos_terminal import money
from pos_terminal.app import Terminal, open_terminal
from pos_terminal.config import Config
from pos_terminal.journal import RowState
from pos_terminal.machine import Key, Phase, State

STEP_TIMEOUT_S = 90.0


def demo_config(config: Config, work_dir: Path) -> Config:
    """The given configuration with its journal, receipts and sandbox moved into `work_dir`."""
    wechat = config.wechat
    sandbox = dataclasses.replace(wechat.sandbox, enabled=True, state_dir=str(work_dir / "sandbox"))
    return dataclasses.replace(
        config,
        journal=dataclasses.replace(config.journal, path=str(work_dir / "journal.sqlite")),
        wechat=dataclasses.replace(wechat, sandbox=sandbox),
        devices=dataclasses.replace(
            config.devices,
            printer=dataclasses.replace(config.devices.printer, out_dir=str(work_dir / "receipts")),
        ),
    )


class DemoScript:
    """Plays cashier and customer against a running terminal."""

    def __init__(self, terminal: Terminal, customer: MockCustomer, sandbox_url: str) -> None:
        self.t = terminal
        self.customer = customer
        self.sandbox_url = sandbox_url
        keypad, scanner = terminal.devices.keypad, terminal.devices.scanner
        assert isinstance(keypad, MockKeypad) and isinstance(scanner, MockScanner)
        self.keypad, self.scanner = keypad, scanner

    async def until(self, predicate: Callable[[State], bool]) -> State:
        return await self.t.runtime.wait_until(predicate, STEP_TIMEOUT_S)

    async def ring_up(self, digits: str) -> None:
        await self.until(lambda s: s.phase in (Phase.IDLE, Phase.APPROVED, Phase.DECLINED))
        self.keypad.type_amount(digits)
        self.keypad.press(Key.ENTER, Key.ENTER)
        await self.until(lambda s: s.phase is Phase.AWAITING_PAYMENT)

    async def native_paid(self) -> str:
        await self.ring_up("1234")
        self.keypad.press(Key.QR)
        state = await self.until(lambda s: s.phase is Phase.SHOWING_QR and s.code_url is not None)
        assert state.code_url is not None
        if not await self.customer.pay_qr(state.code_url):
            return "FAIL the sandbox refused the customer's scan"
        return await self.expect_approved()

    async def code_with_password(self) -> str:
        await self.ring_up("5678")
        code = await self.customer.present_code(Wallet.SLOW, delay_s=2.0)
        self.scanner.scan(code)
        return await self.expect_approved()

    async def native_cancelled(self) -> str:
        await self.ring_up("999")
        self.keypad.press(Key.QR)
        await self.until(lambda s: s.phase is Phase.SHOWING_QR and s.code_url is not None)
        self.keypad.press(Key.CANCEL)
        state = await self.until(
            lambda s: s.phase in (Phase.DECLINED, Phase.PRINTING, Phase.APPROVED)
        )
        if state.phase is not Phase.DECLINED:
            return f"FAIL expected a cancelled sale, got {state.phase}"
        row = (await self.t.runtime.journal(lambda j: j.rows()))[-1]
        remote = await self.sandbox_state(row.out_trade_no)
        ok = row.state is RowState.CLOSED and remote == "CLOSED"
        verdict = "ok" if ok else "FAIL"
        return (
            f"{verdict} cancelled, journal {row.state}, WeChat {remote}, order {row.out_trade_no}"
        )

    async def expect_approved(self) -> str:
        state = await self.until(lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED))
        if state.phase is not Phase.APPROVED or state.last_sale is None:
            return f"FAIL {state.phase}: {state.notice}"
        sale = state.last_sale
        row = await self.t.runtime.journal(lambda j: j.by_out_trade_no(sale.out_trade_no))
        remote = await self.sandbox_state(sale.out_trade_no)
        ok = (
            row is not None
            and row.state is RowState.APPROVED
            and row.printed
            and remote == "SUCCESS"
        )
        verdict = "ok" if ok else "FAIL"
        receipt = Path(self.t.config.devices.printer.out_dir) / f"{sale.out_trade_no}.txt"
        return (
            f"{verdict} approved {money.format_yuan(sale.amount_fen)}, journal "
            f"{row.state if row else 'missing'}, WeChat {remote}, receipt {receipt}"
        )

    async def sandbox_state(self, out_trade_no: str) -> str:
        async with httpx.AsyncClient(base_url=self.sandbox_url) as http:
            answer = await http.get(f"/sandbox/orders/{out_trade_no}")
            return str(answer.json().get("trade_state")) if answer.status_code == 200 else "absent"


async def run_demo(config: Config, work_dir: Path) -> int:
    shutil.rmtree(work_dir, ignore_errors=True)
    config = demo_config(config, work_dir)
    async with open_terminal(config) as terminal:
        assert terminal.sandbox is not None
        runner = asyncio.create_task(terminal.runtime.run())
        customer = MockCustomer(terminal.sandbox.base_url)
        script = DemoScript(terminal, customer, terminal.sandbox.base_url)
        sales: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("Native QR, paid by the customer", script.native_paid),
            ("Payment code, password (USERPAYING) then paid", script.code_with_password),
            ("Native QR, cancelled by the cashier", script.native_cancelled),
        ]
        failures = 0
        try:
            await asyncio.wait_for(terminal.runtime.ready.wait(), STEP_TIMEOUT_S)
            for number, (title, play) in enumerate(sales, 1):
                try:
                    line = await play()
                except TimeoutError:
                    line = f"FAIL timed out in {terminal.runtime.state.phase}"
                failures += not line.startswith("ok")
                print(f"{number}. {title}: {line}", flush=True)
        finally:
            await customer.aclose()
            terminal.runtime.stop()
            await runner
    return 0 if failures == 0 else 1
