"""Refunds through the terminal's policy and journal, against the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from hw_mocks.wechat_sandbox import Faults, WeChatSandbox
from pos_terminal.config import Config
from pos_terminal.errors import PosError
from pos_terminal.journal import Journal
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.machine import Phase
from pos_terminal.ports import Key, Screen
from tests.flow_harness import Harness, flow_config, running
from tests.helpers import sandbox_faults, sandbox_order

REFUNDS = "/v3/refund/domestic/refunds"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[WeChatSandbox]:
    server = WeChatSandbox(
        tmp_path / "sandbox", refund_delay_s=0.2, refund_interval_s=0, persist=True
    )
    server.start()
    yield server
    server.stop()


def config_for(tmp_path: Path, sandbox: WeChatSandbox) -> Config:
    return flow_config(tmp_path, sandbox_url=sandbox.base_url, merchant_json=sandbox.merchant_json)


async def sell(h: Harness, digits: str) -> str:
    await h.ring_up(digits)
    h.scanner.scan(await h.customer.present_code(Wallet.PAID))
    state = await h.result()
    assert state.phase is Phase.APPROVED and state.last_sale is not None
    return state.last_sale.out_trade_no


def remote_refunds(sandbox: WeChatSandbox, out_trade_no: str) -> list[dict[str, object]]:
    return list(sandbox_order(sandbox.base_url, out_trade_no)["refunds"])


def test_a_full_refund_succeeds_and_is_journaled(tmp_path: Path, sandbox: WeChatSandbox) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "1234")
            row = await h.terminal.runtime.refunds.refund(sale, 1234, "顾客退货")
            assert row.state is RefundState.SUCCESS and row.refund_id
            assert await h.remote(sale) == "REFUND"
            assert len(remote_refunds(sandbox, sale)) == 1

    asyncio.run(scenario())


def test_partial_refunds_never_exceed_the_sale(tmp_path: Path, sandbox: WeChatSandbox) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "1000")
            refunds = h.terminal.runtime.refunds
            assert (await refunds.refund(sale, 300)).state is RefundState.SUCCESS
            assert (await refunds.refund(sale, 700)).state is RefundState.SUCCESS
            with pytest.raises(PosError, match="only 0 fen refundable"):
                await refunds.refund(sale, 1)
            assert len(remote_refunds(sandbox, sale)) == 2  # the refused one never left

    asyncio.run(scenario())


def test_a_lost_answer_is_queried_and_never_refunds_twice(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "888")
            sandbox.fault_next("POST", REFUNDS, Faults(system_error_after_commit=True))
            row = await h.terminal.runtime.refunds.refund(sale, 888)
            assert row.state is RefundState.SUCCESS
            assert len(remote_refunds(sandbox, sale)) == 1

    asyncio.run(scenario())


def test_a_refund_left_pending_by_a_crash_is_sent_at_the_next_start(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    config = config_for(tmp_path, sandbox)

    async def first_run() -> str:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            return await sell(h, "555")

    sale = asyncio.run(first_run())
    journal = Journal(tmp_path / "journal.sqlite")  # the crash: journaled, never sent
    journal.open()
    RefundBook(journal).begin(
        out_trade_no=sale,
        out_refund_no="RT0001CRASH0001",
        amount_fen=555,
        reason="",
        now=datetime.now().astimezone(),
    )
    journal.close()

    async def second_run() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            [row] = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
            assert row.state in (RefundState.PROCESSING, RefundState.SUCCESS)
            assert [r["out_refund_no"] for r in remote_refunds(sandbox, sale)] == [
                "RT0001CRASH0001"
            ]

    asyncio.run(second_run())


def test_refunds_still_processing_are_followed_to_their_end_in_the_background(
    tmp_path: Path, sandbox: WeChatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(tmp_path, sandbox)
    payment = replace(config.payment, refund_wait_s=0, refund_follow_s=0.1)
    config = replace(config, payment=payment)

    async def scenario() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "10000")
            refunds = h.terminal.runtime.refunds
            abnormal = await refunds.refund(sale, 4005)  # the sandbox ends 40.05 ABNORMAL
            normal = await refunds.refund(sale, 1000)
            assert abnormal.state is normal.state is RefundState.PROCESSING

            async def states() -> list[RefundState]:
                rows = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
                return [r.state for r in rows]

            for _ in range(100):
                if await states() == [RefundState.ABNORMAL, RefundState.SUCCESS]:
                    break
                await asyncio.sleep(0.05)
            assert await states() == [RefundState.ABNORMAL, RefundState.SUCCESS]

    with caplog.at_level(logging.WARNING, logger="pos_terminal.payments.wechat_refund"):
        asyncio.run(scenario())
    assert any(
        "ABNORMAL" in r.getMessage() and "merchant portal" in r.getMessage() for r in caplog.records
    )


def test_the_cashier_refunds_part_of_a_sale_with_the_supervisor_pin(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "2000")
            h.keypad.press(Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
            h.scanner.scan(sale)  # the QR on the customer's receipt
            state = await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
            assert state.amount_fen == 2000  # the full amount is offered
            h.keypad.press("5", "0", "0", Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_RESULT)
            [refund] = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
            assert refund.amount_fen == 500
            shown = h.terminal.runtime.screen
            assert shown.title in ("退款成功 Refunded", "退款处理中 Refund on its way")
            assert shown.amount_fen == 500
            assert f"退款单号 Refund no. {refund.out_refund_no}" in shown.lines
            for _ in range(100):
                if refund.out_refund_no in h.printer.names:
                    break
                await asyncio.sleep(0.05)
            text = "\n".join(h.printer.last.lines)  # type: ignore[union-attr]
            assert "￥5.00" in text and refund.out_refund_no in text
            # typing the order's last digits finds it too; 1500 fen remain refundable
            h.keypad.press(
                Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER, *sale[-6:], Key.ENTER
            )
            state = await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
            assert state.refundable_fen == 1500

    asyncio.run(scenario())


def test_a_refund_whose_outcome_cannot_be_journaled_is_in_doubt_and_finished_by_itself(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "2000")
            journal = Path(h.terminal.config.journal.path)
            with sqlite3.connect(journal) as db:  # a real failing write, as a full disk
                db.execute(
                    "CREATE TRIGGER test_fault BEFORE UPDATE OF state ON refunds"
                    " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
                )
            h.keypad.press(Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
            h.scanner.scan(sale)
            await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
            h.keypad.press(Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_RESULT)
            assert h.terminal.runtime.screen.title == "退款结果未知 Refund in doubt"
            assert "勿重复退款 Do not refund again" in h.terminal.runtime.screen.lines
            with sqlite3.connect(journal) as db:
                db.execute("DROP TRIGGER test_fault")
            for _ in range(200):
                [refund] = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
                if (
                    refund.state is not RefundState.PENDING
                    and refund.out_refund_no in h.printer.names
                ):
                    break
                await asyncio.sleep(0.05)
            assert refund.state in (RefundState.PROCESSING, RefundState.SUCCESS)
            assert refund.out_refund_no in h.printer.names  # its slip printed once it was known
            assert len(remote_refunds(sandbox, sale)) == 1  # sent again with the same number

    asyncio.run(scenario())


async def _to_refund_amount(h: Harness, sale: str) -> None:
    h.keypad.press(Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER)
    await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
    h.scanner.scan(sale)
    await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)


def test_a_rate_limited_refund_keeps_the_cashier_no_longer_than_refund_wait_s_and_ends_by_itself(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    config = config_for(tmp_path, sandbox)
    wait_s = 1.0
    payment = replace(config.payment, refund_wait_s=wait_s, refund_follow_s=0.1)
    config = replace(config, payment=payment)

    async def scenario() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "2000")
            await _to_refund_amount(h, sale)
            sandbox_faults(sandbox.base_url, rate_limited=True)  # every /v3 request: 429
            started = time.monotonic()
            h.keypad.press(Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_RESULT)
            waited = time.monotonic() - started
            assert wait_s <= waited < wait_s + 1.0  # tried again for the whole wait, no longer
            [refund] = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
            shown = h.terminal.runtime.screen
            assert (shown.title, shown.amount_fen) == ("退款已排队 Refund queued", 2000)
            assert shown.lines[:2] == (
                "将自动完成 It finishes by itself",
                "勿重复退款 Do not refund again",
            )
            assert shown.lines[2] == "原因 Reason: FREQUENCY_LIMITED"
            assert shown.lines[3] == f"退款单号 Refund no. {refund.out_refund_no}"
            assert refund.state is RefundState.PENDING
            assert remote_refunds(sandbox, sale) == []  # WeChat never took it
            sandbox_faults(sandbox.base_url)  # WeChat answers again; nobody touches the till

            async def state() -> RefundState:
                [row] = await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))
                return row.state

            for _ in range(200):
                if await state() is RefundState.SUCCESS:
                    break
                await asyncio.sleep(0.05)
            assert await state() is RefundState.SUCCESS
            [remote] = remote_refunds(sandbox, sale)
            assert remote["out_refund_no"] == refund.out_refund_no
            assert remote["status"] == "SUCCESS"

    asyncio.run(scenario())


def test_supervisor_prompts_reach_the_cashier_while_the_customer_display_says_please_wait(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            await h.until(lambda s: s.phase is Phase.IDLE)
            h.keypad.press(Key.REFUND, "9", "9")
            await h.until(lambda s: s.phase is Phase.SUPERVISOR_PIN and s.mode.pin == "99")
            assert h.display.current == Screen("请稍候 Please wait")
            assert h.display.cashier == Screen("主管密码 Supervisor PIN", lines=("**",))
            h.keypad.press(Key.ENTER)
            await h.until(lambda s: s.phase is Phase.SUPERVISOR_WAIT)
            assert h.display.current == Screen("请稍候 Please wait")
            assert h.display.cashier is not None
            assert h.display.cashier.title == "主管密码错误 Wrong supervisor PIN"
            assert h.terminal.runtime.cashier_screen == h.display.cashier
            await h.until(lambda s: s.phase is Phase.SUPERVISOR_PIN, timeout=5)  # after 2 s
            h.keypad.press(Key.CANCEL)
            await h.until(lambda s: s.phase is Phase.IDLE)
            assert h.display.current == h.display.cashier == Screen("欢迎光临 Welcome")
            assert not any("PIN" in f"{s.title} {s.lines}" for s in h.display.history)

    asyncio.run(scenario())
