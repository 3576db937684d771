"""`pos-terminal demo`: three scripted sales against the sandbox, one line each, exit 0 if all pass.

1. a Native QR sale paid by the mock customer;
2. a payment-code sale where the customer must type a password (USERPAYING, then paid);
3. a Native QR sale cancelled by the cashier while the QR is shown (the order is closed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

from hw_mocks.customer import Wallet
from hw_mocks.scripted import Harness, running
from pos_terminal import money
from pos_terminal.config import Config
from pos_terminal.errors import ConfigError
from pos_terminal.journal import RowState
from pos_terminal.machine import Phase
from pos_terminal.ports import Key


def check_demo_config(config: Config, file: str) -> None:
    """The demo plays its sales on the mock devices against the sandbox, and nothing else.

    Raises:
        ConfigError: the configuration asks for real WeChat Pay or a real device.
    """
    refused = ["wechat.sandbox.enabled: false"] if not config.wechat.sandbox.enabled else []
    refused += [
        f"devices.{kind}.type: {section.type}"
        for kind, section in config.devices.sections.items()
        if section.type != "mock"
    ]
    if refused:
        raise ConfigError(
            "the demo plays its sales on the mock devices against the WeChat Pay sandbox, but "
            f"this file sets {', '.join(refused)}; run it with a laptop configuration such as "
            "config/terminal.yaml",
            file=file,
        )


def demo_config(config: Config, work_dir: Path) -> Config:
    """The given configuration with its journal, receipts and sandbox moved into `work_dir`."""
    wechat = config.wechat
    sandbox = dataclasses.replace(wechat.sandbox, state_dir=str(work_dir / "sandbox"))
    return dataclasses.replace(
        config,
        journal=dataclasses.replace(config.journal, path=str(work_dir / "journal.sqlite")),
        wechat=dataclasses.replace(wechat, sandbox=sandbox),
        devices=config.devices.replace("printer", out_dir=str(work_dir / "receipts")),
    )


class DemoScript:
    """The three sales, each returning its one-line verdict."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness

    async def native_paid(self) -> str:
        await self.h.ring_up("1234")
        if not await self.h.customer.pay_qr(await self.h.show_qr()):
            return "FAIL the sandbox refused the customer's scan"
        return await self.expect_approved()

    async def code_with_password(self) -> str:
        await self.h.ring_up("5678")
        self.h.scanner.scan(await self.h.customer.present_code(Wallet.SLOW, delay_s=2.0))
        return await self.expect_approved()

    async def native_cancelled(self) -> str:
        await self.h.ring_up("999")
        await self.h.show_qr()
        self.h.keypad.press(Key.CANCEL)
        state = await self.h.result()
        if state.phase is not Phase.CANCELLED:
            return f"FAIL expected a cancelled sale, got {state.phase}"
        row = (await self.h.rows())[-1]
        remote = await self.h.remote(row.out_trade_no)
        verdict = "ok" if row.state is RowState.CLOSED and remote == "CLOSED" else "FAIL"
        return (
            f"{verdict} cancelled, journal {row.state}, WeChat {remote}, order {row.out_trade_no}"
        )

    async def expect_approved(self) -> str:
        state = await self.h.result()
        if state.phase is not Phase.APPROVED or state.last_sale is None:
            return f"FAIL {state.phase}: {state.notice}"
        sale = state.last_sale
        row = await self.h.terminal.runtime.journal(lambda j: j.by_out_trade_no(sale.out_trade_no))
        remote = await self.h.remote(sale.out_trade_no)
        ok = (
            row is not None
            and row.state is RowState.APPROVED
            and row.printed
            and remote == "SUCCESS"
        )
        receipt = self.h.printer.out_dir / f"{sale.out_trade_no}.txt"
        return (
            f"{'ok' if ok else 'FAIL'} approved {money.format_yuan(sale.amount_fen)}, journal "
            f"{row.state if row else 'missing'}, WeChat {remote}, receipt {receipt}"
        )


async def run_demo(config: Config, work_dir: Path) -> int:
    """Play the three sales with state kept in `work_dir` (the caller empties it first)."""
    async with running(demo_config(config, work_dir)) as harness:
        script = DemoScript(harness)
        sales: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("Native QR, paid by the customer", script.native_paid),
            ("Payment code, password (USERPAYING) then paid", script.code_with_password),
            ("Native QR, cancelled by the cashier", script.native_cancelled),
        ]
        failures = 0
        for number, (title, play) in enumerate(sales, 1):
            try:
                line = await play()
            except TimeoutError:
                line = f"FAIL timed out in {harness.terminal.runtime.state.phase}"
            failures += not line.startswith("ok")
            print(f"{number}. {title}: {line}", flush=True)
    return 0 if failures == 0 else 1
