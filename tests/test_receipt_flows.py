"""Receipts the running terminal prints: wording per payment method and copy, refund status.

Driven through the real runtime, journal and WeChat Pay sandbox; read back from the printer's bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from hw_mocks.escpos_decode import DecodedReceipt
from hw_mocks.wechat_sandbox import WeChatSandbox
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.machine import Phase
from pos_terminal.ports import Key
from tests.flow_harness import Harness, flow_config, running


def copies(receipt: DecodedReceipt) -> list[list[str]]:
    """The job's copies, each from the line that names it, lines stripped of their centring."""
    lines = [line.strip() for line in receipt.lines]
    starts = [i for i, line in enumerate(lines) if line.endswith("COPY")]
    return [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]


async def printed(h: Harness, name: str) -> DecodedReceipt:
    for _ in range(200):
        if name in h.printer.names and h.printer.last is not None:
            return h.printer.last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was not printed")


def test_both_tenders_print_a_merchant_and_a_customer_copy_worded_for_wechat_pay(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[list[list[str]]]:
        jobs = []
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("1234")
            assert await h.customer.pay_qr(await h.show_qr())
            sale = (await h.result()).last_sale
            assert sale is not None
            jobs.append(copies(await printed(h, sale.out_trade_no)))
            h.keypad.press(Key.CANCEL)
            await h.ring_up("880")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            sale = (await h.result()).last_sale
            assert sale is not None
            jobs.append(copies(await printed(h, sale.out_trade_no)))
        return jobs

    (qr_merchant, qr_customer), (code_merchant, code_customer) = asyncio.run(scenario())
    assert "微信支付 WeChat Pay 扫码" in qr_customer
    assert "微信支付 WeChat Pay 付款码" in code_customer
    assert any(line.startswith("付款码 Code") for line in code_customer)
    for merchant, customer in ((qr_merchant, qr_customer), (code_merchant, code_customer)):
        assert merchant[0] == "商户存根 MERCHANT COPY" and customer[0] == "顾客存根 CUSTOMER COPY"
        assert "扫码查单 Scan to find the order" in merchant
        assert "退款请出示此码" in customer and "谢谢惠顾 Thank you" in customer
        assert not any("持卡人" in line or "Scan to refund" in line for line in merchant + customer)


@pytest.fixture
def slow_refunds(tmp_path: Path) -> Iterator[WeChatSandbox]:
    """A sandbox whose refunds stay PROCESSING for a minute, as a refund to a bank card does."""
    server = WeChatSandbox(tmp_path / "sandbox", refund_delay_s=60, refund_interval_s=0)
    server.start()
    yield server
    server.stop()


def test_a_refund_still_processing_prints_that_the_money_is_on_its_way(
    tmp_path: Path, slow_refunds: WeChatSandbox
) -> None:
    config = flow_config(
        tmp_path, sandbox_url=slow_refunds.base_url, merchant_json=slow_refunds.merchant_json
    )
    config = replace(config, payment=replace(config.payment, refund_wait_s=0.2))

    async def scenario() -> tuple[RefundState, list[list[str]]]:
        async with running(config, sandbox_url=slow_refunds.base_url) as h:
            await h.ring_up("2000")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            sale = (await h.result()).last_sale
            assert sale is not None
            h.keypad.press(Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
            h.scanner.scan(sale.out_trade_no)
            await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
            h.keypad.press("5", "0", "0", Key.ENTER)
            await h.until(lambda s: s.phase is Phase.REFUND_RESULT)
            [refund] = await h.terminal.runtime.journal(
                lambda j: RefundBook(j).of_sale(sale.out_trade_no)
            )
            return refund.state, copies(await printed(h, refund.out_refund_no))

    state, job = asyncio.run(scenario())
    assert state is RefundState.PROCESSING
    for copy in job:
        assert "退款处理中 Refund on its way" in copy and "退款成功 Refunded" not in copy
