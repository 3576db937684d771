"""Recovery the cashier can see, and refund slips whoever finishes the refund (issue 11, 4 and 5).

Driven through the real runtime, journal and WeChat Pay sandbox over HTTP; what the cashier
sees is read from the mock display's screens, what prints from the mock printer's bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from hw_mocks.escpos_decode import DecodedReceipt
from hw_mocks.printer import MockPrinter
from hw_mocks.wechat_sandbox import NotifySettings, WeChatSandbox
from pos_terminal.app import open_terminal
from pos_terminal.config import Config
from pos_terminal.journal import Journal, Method, RowState
from pos_terminal.journal_refunds import RefundBook, RefundRow, RefundState
from pos_terminal.machine import Phase
from pos_terminal.ports import Key, PaperStatus
from tests.flow_harness import Harness, flow_config, running
from tests.notify_receiver import free_port

PIN = ("1", "2", "3", "4")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[WeChatSandbox]:
    server = WeChatSandbox(tmp_path / "sandbox", refund_delay_s=0, refund_interval_s=0)
    server.start()
    yield server
    server.stop()


def config_for(tmp_path: Path, sandbox: WeChatSandbox, *, qr_poll: float = 0.1) -> Config:
    return flow_config(
        tmp_path,
        sandbox_url=sandbox.base_url,
        merchant_json=sandbox.merchant_json,
        qr_poll=qr_poll,
    )


async def printed(h: Harness, name: str, times: int = 1) -> DecodedReceipt:
    """The job called `name` once it has printed `times` times; its text if it is the last."""
    for _ in range(200):
        if h.printer.names.count(name) >= times and h.printer.last is not None:
            return h.printer.last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was not printed {times} time(s): {h.printer.names}")


def text(receipt: DecodedReceipt) -> list[str]:
    return [line.strip() for line in receipt.lines]


async def sell(h: Harness, digits: str) -> str:
    await h.ring_up(digits)
    h.scanner.scan(await h.customer.present_code(Wallet.PAID))
    state = await h.result()
    assert state.phase is Phase.APPROVED and state.last_sale is not None
    return state.last_sale.out_trade_no


async def refunds_of(h: Harness, sale: str) -> list[RefundRow]:
    return await h.terminal.runtime.journal(lambda j: RefundBook(j).of_sale(sale))


def test_a_restart_counts_what_it_resolves_shows_the_outcomes_and_prints_them(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    # the QR order is polled only every 30 s: the customer pays it and the terminal stops
    # before it has heard, leaving the row QR_SHOWN with the money taken
    config = config_for(tmp_path, sandbox, qr_poll=30)

    async def crashed_run() -> tuple[str, str]:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            sold = await sell(h, "555")
            h.keypad.press(Key.CANCEL)
            await h.ring_up("1234")
            assert await h.customer.pay_qr(await h.show_qr())
            [_, in_doubt] = await h.rows()
            assert in_doubt.state is RowState.QR_SHOWN
            return sold, in_doubt.out_trade_no

    sold, paid_qr = asyncio.run(crashed_run())
    journal = Journal(tmp_path / "journal.sqlite")  # the crash: journaled, never sent
    journal.open()
    an_hour_ago = datetime.now().astimezone() - timedelta(hours=1)
    never_sent = journal.begin_sale(
        method=Method.WECHAT_CODE,
        amount_fen=880,
        out_trade_no="T0001209901010000000077",
        masked_code="1345********6789",
        store_id="SH-0001",
        terminal_id="T0001",
        now=an_hour_ago,
    )
    refund = RefundBook(journal).begin(
        out_trade_no=sold,
        out_refund_no="RT0001CRASH0001",
        amount_fen=555,
        reason="顾客退货 Customer return",
        now=an_hour_ago,
        authorised_by="supervisor",
    )
    journal.close()

    async def restart() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            state = await h.until(lambda s: s.phase is Phase.RECOVERED)
            titles = [s.title for s in h.display.history]
            counted = [t for t in titles if t.startswith("正在核对交易 Resolving payments ")]
            assert counted == [f"正在核对交易 Resolving payments {n}/3" for n in (1, 2, 3)]
            summary = h.display.history[-1]
            assert summary.title == "开机核对结果 Resolved at start"
            assert summary.lines[0] == f"{paid_qr[-8:]} ¥12.34 已收款 Paid"
            assert summary.lines[1].startswith("00000077 ¥8.80 ")
            assert summary.lines[1].endswith(("未收款 Not paid", "已撤销 Reversed"))
            assert summary.lines[2:] == (
                "RASH0001 ¥5.55 已退款 Refunded",
                "按 Enter 确认 Press Enter to go on",
            )
            assert state.phase is Phase.RECOVERED  # no sale before the cashier has read it
            # the merchant's slip, then the approved sale's receipt and the refund's slip
            await printed(h, "RT0001CRASH0001")
            [slip_name] = [n for n in h.printer.names if n.startswith("recovery-")]
            assert list(h.printer.names) == [slip_name, paid_qr, "RT0001CRASH0001"]
            slip = (tmp_path / "receipts" / f"{slip_name}.txt").read_text(encoding="utf-8")
            for number in (paid_qr, never_sent.out_trade_no, refund.out_refund_no):
                assert number in slip
            assert "已收款 Paid" in slip and "已退款 Refunded" in slip
            [row] = [r for r in await h.rows() if r.out_trade_no == paid_qr]
            assert row.state is RowState.APPROVED and row.printed
            [done] = await refunds_of(h, sold)
            assert done.state is RefundState.SUCCESS and done.printed
            h.keypad.press(Key.CANCEL, "1")  # only Enter goes on
            await asyncio.sleep(0.2)
            assert h.terminal.runtime.state.phase is Phase.RECOVERED
            h.keypad.press(Key.ENTER)
            await h.until(lambda s: s.phase is Phase.IDLE)

    asyncio.run(restart())

    async def clean_restart() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.until(lambda s: s.phase is Phase.IDLE)
            assert all(s.title != "开机核对结果 Resolved at start" for s in h.display.history)
            await asyncio.sleep(0.3)  # the printer watch runs every 0.1 s: nothing is due
            assert list(h.printer.names) == []

    asyncio.run(clean_restart())


def test_a_refund_finished_in_the_background_prints_its_slip_and_can_be_reprinted(
    tmp_path: Path,
) -> None:
    slow = WeChatSandbox(tmp_path / "sandbox", refund_delay_s=0.6, refund_interval_s=0)
    slow.start()
    config = flow_config(tmp_path, sandbox_url=slow.base_url, merchant_json=slow.merchant_json)
    config = replace(
        config, payment=replace(config.payment, refund_wait_s=0.1, refund_follow_s=0.1)
    )

    async def scenario() -> None:
        async with running(config, sandbox_url=slow.base_url) as h:
            sale = await sell(h, "2000")
            h.keypad.press(Key.CANCEL, Key.REFUND, *PIN, Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
            h.scanner.scan(sale)
            await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
            h.keypad.press("5", "0", "0", Key.REFUND, Key.ENTER)  # f: the next reason
            await h.until(lambda s: s.phase is Phase.REFUND_RESULT)
            [refund] = await refunds_of(h, sale)
            assert refund.state is RefundState.PROCESSING  # the cashier's wait ended first
            assert (refund.authorised_by, refund.reason) == ("supervisor", "商品问题 Faulty goods")
            number = refund.out_refund_no
            under_way = text(await printed(h, number))
            assert "退款处理中 Refund on its way" in under_way
            # the background watch hears SUCCESS: the slip that says the money is back
            done = text(await printed(h, number, times=2))
            assert "退款成功 Refunded" in done and "退款处理中 Refund on its way" not in done
            assert any("商品问题 Faulty goods" in line for line in done)
            [refund] = await refunds_of(h, sale)
            assert refund.state is RefundState.SUCCESS and refund.printed
            await asyncio.sleep(0.3)
            assert h.printer.names.count(number) == 2  # once final, it prints once
            h.keypad.press(Key.REPRINT)  # `r` on the refund's result: that refund again
            again = text(await printed(h, f"{number}-reprint"))
            assert "** 重印 REPRINT **" in again and "退款成功 Refunded" in again
            h.keypad.press(Key.ENTER)
            await h.until(lambda s: s.phase is Phase.IDLE)
            h.keypad.press(Key.REPRINT)  # the last receipt is the refund's slip
            await printed(h, f"{number}-reprint", times=2)
            h.scanner.scan(number)  # a refund number scanned while idle
            await printed(h, f"{number}-reprint", times=3)
            h.scanner.scan(sale)  # and the sale's order number still reprints the sale
            assert "消费 SALE" in text(await printed(h, f"{sale}-reprint"))

    try:
        asyncio.run(scenario())
    finally:
        slow.stop()


def test_a_refund_still_processing_at_shutdown_prints_when_it_ends_after_the_restart(
    tmp_path: Path,
) -> None:
    slow = WeChatSandbox(tmp_path / "sandbox", refund_delay_s=1.0, refund_interval_s=0)
    slow.start()
    config = flow_config(tmp_path, sandbox_url=slow.base_url, merchant_json=slow.merchant_json)
    config = replace(config, payment=replace(config.payment, refund_wait_s=0, refund_follow_s=0.1))

    async def before_ctrl_c() -> tuple[str, str]:
        async with running(config, sandbox_url=slow.base_url) as h:
            sale = await sell(h, "3000")
            row = await h.terminal.runtime.refunds.refund(sale, 3000, "", "supervisor")
            assert row.state is RefundState.PROCESSING
            return sale, row.out_refund_no

    async def after_restart(sale: str, number: str) -> None:
        async with running(config, sandbox_url=slow.base_url) as h:
            await h.acknowledge_recovery()
            done = text(await printed(h, number))
            assert "退款成功 Refunded" in done
            [refund] = await refunds_of(h, sale)
            assert refund.state is RefundState.SUCCESS and refund.printed

    try:
        sale, number = asyncio.run(before_ctrl_c())
        asyncio.run(after_restart(sale, number))
    finally:
        slow.stop()


def test_a_refund_ended_by_wechats_notification_prints_its_slip(
    start_sandbox: Callable[..., WeChatSandbox], tmp_path: Path
) -> None:
    sandbox = start_sandbox(
        notify=NotifySettings(time_scale=0.001),
        refund_delay_s=0.3,
        refund_interval_s=0,
        clock=time.time,
        allow_loopback_notify=True,
    )
    config = flow_config(
        tmp_path,
        sandbox_url=sandbox.base_url,
        merchant_json=sandbox.merchant_json,
        notify_port=free_port(),
    )
    # the terminal neither waits nor follows: only the notification can end this refund
    config = replace(config, payment=replace(config.payment, refund_wait_s=0, refund_follow_s=3600))

    async def scenario() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            sale = await sell(h, "1500")
            row = await h.terminal.runtime.refunds.refund(sale, 700, "", "supervisor")
            assert row.state is RefundState.PROCESSING
            done = text(await printed(h, row.out_refund_no))
            assert "退款成功 Refunded" in done
            [refund] = await refunds_of(h, sale)
            assert refund.state is RefundState.SUCCESS and refund.printed
            events = await h.terminal.runtime.journal(
                lambda j: j.db.execute(
                    "SELECT note FROM refund_events WHERE refund_id = ? ORDER BY id", (row.id,)
                ).fetchall()
            )
            assert "notification" in events[-1][0]  # the receiver ended it, nobody else

    asyncio.run(scenario())


def test_the_recovery_slip_waits_for_paper_and_then_prints_before_the_receipt(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    config = config_for(tmp_path, sandbox, qr_poll=30)  # as above: paid, never heard

    async def crashed_run() -> str:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.ring_up("1234")
            assert await h.customer.pay_qr(await h.show_qr())
            [row] = await h.rows()
            return row.out_trade_no

    paid_qr = asyncio.run(crashed_run())

    async def restart_out_of_paper() -> None:
        async with open_terminal(config) as terminal:
            printer = terminal.devices.printer
            assert isinstance(printer, MockPrinter)
            printer.paper = PaperStatus.OUT
            runner = asyncio.create_task(terminal.runtime.run())
            try:
                await terminal.runtime.wait_until(lambda s: s.phase is Phase.RECOVERED, 20)
                await asyncio.sleep(0.5)  # five rounds of the printer watch
                assert list(printer.names) == []
                assert terminal.runtime.state.printer_notice  # the cashier is told why
                printer.paper = PaperStatus.OK
                for _ in range(100):
                    if len(printer.names) == 2:
                        break
                    await asyncio.sleep(0.05)
                [slip, receipt] = printer.names
                assert slip.startswith("recovery-") and receipt == paid_qr
            finally:
                terminal.runtime.stop()
                await runner

    asyncio.run(restart_out_of_paper())
