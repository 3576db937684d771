"""Finding the sale a refund is for: by order number, or by enough of its last digits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from hw_mocks.wechat_sandbox import WeChatSandbox
from pos_terminal.journal import Journal, PaymentRow
from pos_terminal.machine import Phase
from pos_terminal.ports import Key
from tests.flow_harness import flow_config, running
from tests.journal_rows import add_sale, journal_with_sale


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = journal_with_sale(tmp_path / "journal.sqlite", "PT1261202100000123456", approved=True)
    yield journal
    journal.close()


def _found(answer: PaymentRow | str) -> str:
    assert isinstance(answer, PaymentRow), answer
    return answer.out_trade_no


def test_a_sale_is_found_by_its_order_number_or_by_last_digits_that_end_it_alone(
    journal: Journal,
) -> None:
    add_sale(journal, "PT1261202100001654321", approved=True)
    assert _found(journal.find_sale("PT1261202100000123456")) == "PT1261202100000123456"
    assert _found(journal.find_sale("3456")) == "PT1261202100000123456"
    assert _found(journal.find_sale("654321")) == "PT1261202100001654321"


def test_a_query_that_cannot_name_one_sale_says_what_to_do(journal: Journal) -> None:
    add_sale(journal, "PT1261202100001993456", approved=True)
    add_sale(journal, "PT1261202100002777777")
    assert journal.find_sale("456") == "请至少输入4位 Type at least 4 digits of the order no."
    assert journal.find_sale("3456") == "多笔交易匹配 Several sales end in 3456: type more digits"
    assert _found(journal.find_sale("23456")) == "PT1261202100000123456"
    assert journal.find_sale("7777") == "找不到交易 No approved sale ends in 7777"
    assert journal.find_sale("PT1261202100002777777") == (
        "交易未成功 PT1261202100002777777 is not an approved sale (pending)"
    )
    assert journal.find_sale("PTX") == "找不到交易 No sale has order no. PTX"


def test_the_cashier_is_told_to_type_more_digits_and_then_finds_the_sale(tmp_path: Path) -> None:
    sandbox = WeChatSandbox(tmp_path / "sandbox")
    sandbox.start()
    try:
        config = flow_config(
            tmp_path, sandbox_url=sandbox.base_url, merchant_json=sandbox.merchant_json
        )

        async def scenario() -> None:
            async with running(config, sandbox_url=sandbox.base_url) as h:
                await h.ring_up("1500")
                h.scanner.scan(await h.customer.present_code(Wallet.PAID))
                state = await h.result()
                assert state.last_sale is not None
                sale = state.last_sale.out_trade_no
                h.keypad.press(Key.CANCEL, Key.REFUND, "1", "2", "3", "4", Key.ENTER)
                await h.until(lambda s: s.phase is Phase.REFUND_ORDER)
                h.keypad.press(*sale[-3:], Key.ENTER)
                state = await h.until(lambda s: "at least 4 digits" in s.notice)
                assert state.phase is Phase.REFUND_ORDER
                h.keypad.press(*sale[-5:], Key.ENTER)
                state = await h.until(lambda s: s.phase is Phase.REFUND_AMOUNT)
                assert state.refundable_fen == 1500

        asyncio.run(scenario())
    finally:
        sandbox.stop()
