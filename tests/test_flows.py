"""Whole sales: the real runtime, journal and receipts on mock devices, the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hw_mocks.customer import Wallet
from hw_mocks.wechat_sandbox import WeChatSandbox
from pos_terminal.app import open_terminal
from pos_terminal.journal import FINAL_STATES, Journal, Method, RowState
from pos_terminal.machine import Phase
from pos_terminal.ports import Key, PaperStatus
from tests.flow_harness import flow_config, running
from tests.helpers import sandbox_control


def test_native_sale_paid_by_the_customer_is_journaled_and_printed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("1234")
            code_url = await h.show_qr()
            assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
            assert h.display.current is not None and h.display.current.qr == code_url
            assert await h.customer.pay_qr(code_url)
            state = await h.result()
            assert state.phase is Phase.APPROVED and state.last_sale is not None
            sale = state.last_sale
            [row] = await h.rows()
            assert (row.state, row.method, row.amount_fen) == (
                RowState.APPROVED,
                Method.WECHAT_NATIVE,
                1234,
            )
            assert row.printed and row.transaction_id == sale.transaction_id
            assert await h.remote(row.out_trade_no) == "SUCCESS"
            receipt = h.printer.last
            assert receipt is not None
            text = "\n".join(receipt.lines)
            assert "￥12.34" in text and "好邻居便利店" in text
            assert sale.out_trade_no in receipt.qr_payloads
            assert (tmp_path / "receipts" / f"{sale.out_trade_no}.bin").stat().st_size > 0

    asyncio.run(scenario())


def test_payment_code_paid_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("880")
            code = await h.customer.present_code(Wallet.PAID)
            h.scanner.scan(code)
            state = await h.result()
            assert state.phase is Phase.APPROVED
            [row] = await h.rows()
            assert row.state is RowState.APPROVED and row.method is Method.WECHAT_CODE
            assert row.masked_code == code[:4] + "*" * 10 + code[-4:]
            assert code not in "\n".join(h.printer.last.lines if h.printer.last else [])
            # WeChat's success time, in the merchant's zone, dates the sale and its receipt
            assert row.success_time is not None
            paid = datetime.fromisoformat(row.success_time).astimezone(ZoneInfo("Asia/Shanghai"))
            assert row.business_date == paid.date().isoformat()
            assert h.printer.last is not None
            assert any(paid.strftime("%Y-%m-%d %H:%M:%S") in line for line in h.printer.last.lines)

    asyncio.run(scenario())


def test_password_payment_shows_waiting_then_approves(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path, userpaying_s=0.5)) as h:
            await h.ring_up("4001")  # sandbox magic: USERPAYING, then paid
            h.scanner.scan("134567890123456789")
            state = await h.result()
            assert state.phase is Phase.APPROVED
            titles = [s.title for s in h.display.history]
            assert any("Customer entering password" in t for t in titles)
            [row] = await h.rows()
            assert row.state is RowState.APPROVED
            assert await h.remote(row.out_trade_no) == "SUCCESS"

    asyncio.run(scenario())


def test_insufficient_balance_is_declined_with_the_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("500")
            h.scanner.scan(await h.customer.present_code(Wallet.NOT_ENOUGH))
            state = await h.result()
            assert state.phase is Phase.DECLINED and "Insufficient balance" in state.notice
            assert h.printer.jobs == 0
            # the refused order is reversed afterwards, so it cannot end up debited
            for _ in range(100):
                [row] = await h.rows()
                if row.state in FINAL_STATES:
                    break
                await asyncio.sleep(0.05)
            assert row.state is RowState.REVERSED
            assert await h.remote(row.out_trade_no) == "REVOKED"

    asyncio.run(scenario())


@pytest.mark.slow
def test_customer_who_never_finishes_is_reversed_at_the_deadline(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path, deadline=1.0)) as h:
            await h.ring_up("4002")  # sandbox magic: USERPAYING until reversed
            h.scanner.scan("134567890123456780")
            state = await h.result()
            assert state.phase is Phase.DECLINED and "reversed" in state.notice
            [row] = await h.rows()
            assert row.state is RowState.REVERSED
            assert await h.remote(row.out_trade_no) == "REVOKED"

    asyncio.run(scenario())


def test_cancel_while_the_customer_types_the_password_reverses(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path, deadline=60)) as h:
            await h.ring_up("4002")
            h.scanner.scan("134567890123456781")
            await h.until(lambda s: any("password" in x.title for x in h.display.history))
            h.keypad.press(Key.CANCEL)
            state = await h.result()
            assert state.phase is Phase.CANCELLED and state.notice == ""
            [row] = await h.rows()
            assert row.state is RowState.REVERSED
            assert await h.remote(row.out_trade_no) == "REVOKED"

    asyncio.run(scenario())


def test_cancel_while_the_qr_is_shown_closes_the_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("999")
            code_url = await h.show_qr()
            h.keypad.press(Key.CANCEL)
            state = await h.result()
            assert state.phase is Phase.CANCELLED
            [row] = await h.rows()
            assert row.state is RowState.CLOSED
            assert await h.remote(row.out_trade_no) == "CLOSED"
            assert not await h.customer.pay_qr(code_url), "a closed order must not be payable"

    asyncio.run(scenario())


def test_a_payment_that_lands_just_before_cancel_is_an_approved_sale(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path, qr_poll=60)) as h:  # no poll sees it
            await h.ring_up("777")
            code_url = await h.show_qr()
            assert await h.customer.pay_qr(code_url)
            h.keypad.press(Key.CANCEL)
            state = await h.result()
            assert state.phase is Phase.APPROVED
            [row] = await h.rows()
            assert row.state is RowState.APPROVED

    asyncio.run(scenario())


def test_sales_follow_one_another_with_new_order_numbers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            for digits in ("100", "200", "300"):
                await h.ring_up(digits)
                h.scanner.scan(await h.customer.present_code(Wallet.PAID))
                assert (await h.result()).phase is Phase.APPROVED
            rows = await h.rows()
            assert [r.amount_fen for r in rows] == [100, 200, 300]
            assert len({r.out_trade_no for r in rows}) == 3
            assert h.printer.jobs == 3

    asyncio.run(scenario())


def test_garbage_scans_never_reach_the_gateway(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("100")
            for junk in ("", "\x00\x1b[31m", "ABC" * 1000, "281234567890123456", "😀" * 18):
                h.scanner.scan(junk)
            state = await h.until(lambda s: s.notice != "")
            assert state.phase is Phase.AWAITING_PAYMENT
            assert await h.rows() == []

    asyncio.run(scenario())


def _external_sandbox(tmp_path: Path) -> WeChatSandbox:
    sandbox = WeChatSandbox(tmp_path / "sandbox", userpaying_s=0.5)
    sandbox.start()
    return sandbox


def test_a_payment_in_flight_at_shutdown_is_resolved_at_the_next_start(tmp_path: Path) -> None:
    sandbox = _external_sandbox(tmp_path)
    config = flow_config(
        tmp_path, sandbox_url=sandbox.base_url, merchant_json=sandbox.merchant_json, deadline=60
    )

    async def first_run() -> str:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.ring_up("4002")
            h.scanner.scan("134567890123456782")
            await h.until(lambda s: any("password" in x.title for x in h.display.history))
            [row] = await h.rows()
            assert row.state is RowState.PENDING
            return row.out_trade_no  # leaving the block stops the runtime mid-payment

    async def second_run(out_trade_no: str) -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            [row] = await h.rows()
            assert row.out_trade_no == out_trade_no and row.state is RowState.REVERSED
            assert await h.remote(out_trade_no) == "REVOKED"
            await h.until(lambda s: s.phase is Phase.RECOVERED)  # the cashier is told
            assert h.display.history[-1].lines[0] == f"{out_trade_no[-8:]} ¥40.02 已撤销 Reversed"
            await h.acknowledge_recovery()

    try:
        out_trade_no = asyncio.run(first_run())
        asyncio.run(second_run(out_trade_no))
    finally:
        sandbox.stop()


def test_recovery_closes_unpaid_qr_orders_and_keeps_paid_ones(tmp_path: Path) -> None:
    sandbox = _external_sandbox(tmp_path)
    config = flow_config(
        tmp_path, sandbox_url=sandbox.base_url, merchant_json=sandbox.merchant_json, qr_poll=60
    )

    async def first_run() -> tuple[str, str]:
        numbers = []
        async with running(config, sandbox_url=sandbox.base_url) as h:
            for pay in (False, True):
                await h.ring_up("321")
                code_url = await h.show_qr()
                if pay:
                    assert await h.customer.pay_qr(code_url)
                rows = await h.rows()
                numbers.append(rows[-1].out_trade_no)
                if not pay:
                    h.keypad.press(Key.CANCEL)
                    await h.result()
            # the second QR is still on screen, paid but not yet seen, when the terminal stops
        return numbers[0], numbers[1]

    async def second_run(closed: str, paid: str) -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            states = {r.out_trade_no: r.state for r in await h.rows()}
            assert states == {closed: RowState.CLOSED, paid: RowState.APPROVED}
            assert await h.remote(paid) == "SUCCESS"

    try:
        closed, paid = asyncio.run(first_run())
        asyncio.run(second_run(closed, paid))
    finally:
        sandbox.stop()


@pytest.mark.slow
def test_the_terminal_is_not_ready_until_wechat_answers(tmp_path: Path) -> None:
    sandbox = _external_sandbox(tmp_path)
    url, merchant_json = sandbox.base_url, sandbox.merchant_json
    port = sandbox.port
    journal = Journal(tmp_path / "journal.sqlite")
    journal.open()
    journal.begin_sale(
        method=Method.WECHAT_NATIVE,
        amount_fen=100,
        out_trade_no="T0001LEFTOVER01",
        masked_code=None,
        store_id="SH-0001",
        terminal_id="T0001",
        now=datetime.now().astimezone(),
    )
    journal.close()
    sandbox.stop()
    config = flow_config(tmp_path, sandbox_url=url, merchant_json=merchant_json)

    async def scenario() -> None:
        async with open_terminal(config) as terminal:
            runner = asyncio.create_task(terminal.runtime.run())
            await asyncio.sleep(1.0)
            assert not terminal.runtime.ready.is_set()
            assert terminal.runtime.state.phase is Phase.RECOVERING
            back = WeChatSandbox(tmp_path / "sandbox", port=port)
            await asyncio.to_thread(back.start)
            try:
                await asyncio.wait_for(terminal.runtime.ready.wait(), 20)
                rows = await terminal.runtime.journal(lambda j: j.rows())
                assert [r.state for r in rows] == [RowState.CLOSED]
            finally:
                terminal.runtime.stop()
                await runner
                await asyncio.to_thread(back.stop)

    asyncio.run(scenario())


def test_a_printer_failure_leaves_the_sale_approved_and_unprinted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            out_dir = h.printer.out_dir
            out_dir.rmdir()
            out_dir.write_text("not a directory")  # every write now fails, like a dead printer
            await h.ring_up("1500")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            state = await h.result()
            assert state.phase is Phase.APPROVED and "cannot write" in state.notice
            assert any("Printer needs attention" in " ".join(s.lines) for s in h.display.history)
            [row] = await h.rows()
            assert row.state is RowState.APPROVED and not row.printed

    asyncio.run(scenario())


def test_an_unexpected_failure_inside_a_payment_still_settles_its_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            payments = h.terminal.runtime.payments
            posted: list[object] = []
            row = await payments._begin(Method.WECHAT_NATIVE, 100, None, 7, posted.append)
            assert row is not None

            async def broken_policy() -> None:
                raise RuntimeError("a bug")

            await payments._guarded(row, 7, posted.append, broken_policy())
            # in doubt first (do not charge again), then the real outcome once resolved
            assert [type(e).__name__ for e in posted] == ["PaymentInDoubt", "PaymentDeclined"]
            [settled] = await h.rows()
            assert settled.state is RowState.CLOSED

    asyncio.run(scenario())


def test_sales_fail_over_to_the_backup_host_when_the_primary_is_down(tmp_path: Path) -> None:
    sandbox = _external_sandbox(tmp_path)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening: refused
        config = flow_config(
            tmp_path,
            sandbox_url=sandbox.base_url,
            merchant_json=sandbox.merchant_json,
            primary_url=dead,
        )

        async def scenario() -> None:
            async with running(config, sandbox_url=sandbox.base_url) as h:
                await h.ring_up("4321")
                h.scanner.scan(await h.customer.present_code(Wallet.PAID))
                assert (await h.result()).phase is Phase.APPROVED
                await h.ring_up("1234")
                assert await h.customer.pay_qr(await h.show_qr())
                assert (await h.result()).phase is Phase.APPROVED

        try:
            asyncio.run(scenario())
        finally:
            sandbox.stop()


def test_paper_out_mid_sale_prints_the_receipt_once_paper_is_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            h.printer.paper = PaperStatus.OUT
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            state = await h.result()
            assert state.phase is Phase.APPROVED and "Paper out" in state.printer_notice
            [row] = await h.rows()
            assert row.state is RowState.APPROVED and not row.printed
            assert h.printer.jobs == 0
            h.printer.paper = PaperStatus.OK
            await h.until(lambda s: s.printer_notice == "")
            [row] = await h.rows()
            assert row.printed and h.printer.jobs == 1
            assert list(h.printer.names) == [row.out_trade_no]
            assert any("￥25.00" in line for line in h.printer.last.lines)  # type: ignore[union-attr]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("reprint_copies", "stubs"),
    [
        (None, ["顾客存根 CUSTOMER COPY"]),  # the default: the customer's copy only
        ("merchant", ["商户存根 MERCHANT COPY"]),
        ("both", ["商户存根 MERCHANT COPY", "顾客存根 CUSTOMER COPY"]),
    ],
)
def test_the_cashier_can_reprint_the_last_receipt(
    tmp_path: Path, reprint_copies: str | None, stubs: list[str]
) -> None:
    config = flow_config(tmp_path)
    if reprint_copies is not None:
        devices = config.devices.replace("printer", reprint_copies=reprint_copies)
        config = replace(config, devices=devices)

    async def scenario() -> None:
        async with running(config) as h:
            await h.ring_up("1888")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            await h.result()
            [row] = await h.rows()
            h.keypad.press(Key.REPRINT)
            for _ in range(100):
                if h.printer.jobs == 2:
                    break
                await asyncio.sleep(0.05)
            assert list(h.printer.names) == [row.out_trade_no, f"{row.out_trade_no}-reprint"]
            reprinted = h.printer.last
            assert reprinted is not None
            text = "\n".join(reprinted.lines)
            assert "重印 REPRINT" in text and "￥18.88" in text and row.out_trade_no in text
            printed_stubs = [
                line.strip() for line in reprinted.lines if line.strip().endswith("COPY")
            ]
            assert printed_stubs == stubs
            assert reprinted.qr_payloads == [row.out_trade_no] * len(stubs)

    asyncio.run(scenario())


def test_scanning_an_old_receipt_while_idle_reprints_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            first = []
            for digits in ("111", "222"):
                await h.ring_up(digits)
                h.scanner.scan(await h.customer.present_code(Wallet.PAID))
                state = await h.result()
                assert state.last_sale is not None
                first.append(state.last_sale.out_trade_no)
            h.keypad.press(Key.CANCEL)
            await h.until(lambda s: s.phase is Phase.IDLE)
            h.scanner.scan(first[0])  # the QR printed on the first receipt
            h.scanner.scan("T0001NOSUCHORDER")  # not a sale of this terminal: nothing printed
            for _ in range(100):
                if h.printer.jobs == 3:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert list(h.printer.names) == [*first, f"{first[0]}-reprint"]
            assert "￥1.11" in "\n".join(h.printer.last.lines)  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_native_create_answered_429_is_tried_three_times_then_the_order_is_closed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            for _ in range(5):  # more refusals queued than the terminal may try
                answer = sandbox_control(
                    h.sandbox_url,
                    "POST",
                    "/sandbox/faults/next",
                    {"method": "POST", "path": "/v3/pay/transactions/native", "rate_limited": True},
                )
                assert answer.status_code == 200, answer.text
            await h.ring_up("1500")
            h.keypad.press(Key.QR)
            state = await h.result()
            assert state.phase is Phase.DECLINED
            [row] = await h.rows()
            events = await h.terminal.runtime.journal(lambda j: j.events(row.id))
            notes = [note for _, _, note in events]
            assert notes.count("create: outcome unknown (FREQUENCY_LIMITED)") == 3
            assert row.state is RowState.CLOSED
            assert await h.remote(row.out_trade_no) == "absent"

    asyncio.run(scenario())
