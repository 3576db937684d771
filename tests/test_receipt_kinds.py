"""Every receipt kind through the decoder: sale extras, refund, void, settlement, reprints."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest

from hw_mocks.escpos_decode import DecodedReceipt, decode
from pos_terminal.receipt import (
    WECHAT_CODE,
    WECHAT_NATIVE,
    Copy,
    Coupon,
    MethodTotals,
    PrinterProfile,
    Receipt,
    RecoveredLine,
    RecoveryReceipt,
    RefundReceipt,
    RefundResult,
    SaleReceipt,
    SettlementReceipt,
    VoidReceipt,
    layout_text,
    printed_width,
    render_escpos,
)

CST = timezone(timedelta(hours=8))
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=CST)
HEAD = {
    "merchant_name": "好邻居便利店",
    "store_id": "S001",
    "terminal_id": "T01",
    "time": NOON,
    "cashier": "王芳 007",
}
SALE = SaleReceipt(
    **HEAD,  # type: ignore[arg-type]
    method=WECHAT_CODE,
    amount_fen=4500,
    discount_fen=500,
    out_trade_no="POS20240501120000A1",
    transaction_id="4200001234202405011234567890",
    masked_code="1345********6789",
    promotions=("满50减5 ¥5 off orders over ¥50",),
    coupon=Coupon("下次消费立减￥3", "CP-7F3K-92QX", date(2024, 6, 30), "限本店使用"),
)
REFUND = RefundReceipt(
    **HEAD,  # type: ignore[arg-type]
    method=WECHAT_CODE,
    refund_fen=1500,
    sale_amount_fen=4500,
    out_trade_no="POS20240501120000A1",
    out_refund_no="R20240501130000B2",
    reason="商品退货 returned goods",
)
VOID = VoidReceipt(
    **HEAD,  # type: ignore[arg-type]
    method=WECHAT_CODE,
    amount_fen=4500,
    out_trade_no="POS20240501120000A1",
    transaction_id="4200001234202405011234567890",
)
SETTLEMENT = SettlementReceipt(
    **{**HEAD, "time": NOON + timedelta(hours=10)},  # type: ignore[arg-type]
    batch_no="000042",
    period_start=NOON - timedelta(hours=4),
    methods=(
        MethodTotals(WECHAT_CODE, 12, 123_456, 1, 1_500),
        MethodTotals(WECHAT_NATIVE, 3, 8_800),
    ),
)
RECOVERY = RecoveryReceipt(
    **HEAD,  # type: ignore[arg-type]
    lines=(
        RecoveredLine("POS20240501120000A1", 4500, "已收款 Paid"),
        RecoveredLine("POS20240501120500A2", 1288, "已撤销 Reversed"),
        RecoveredLine("R20240501130000B2", 1500, "已退款 Refunded"),
    ),
)
ALL: tuple[Receipt, ...] = (SALE, REFUND, VOID, SETTLEMENT, RECOVERY)


def printed(receipt: Receipt, encoding: str = "gb18030", **profile: object) -> DecodedReceipt:
    prof = PrinterProfile(encoding=encoding, **profile)  # type: ignore[arg-type]
    return decode(render_escpos(receipt, prof), encoding=encoding)


def value_of(decoded: DecodedReceipt, label: str) -> str:
    """The right-aligned value after `label`: on its line, or on the next when it did not fit."""
    index = next(i for i, line in enumerate(decoded.lines) if line.startswith(label))
    value = decoded.lines[index][len(label) :].strip()
    return value or decoded.lines[index + 1].strip()


def test_sale_shows_original_discount_paid_cashier_and_promotion() -> None:
    decoded = printed(SALE)
    assert value_of(decoded, "原价 Original") == "￥50.00"
    assert value_of(decoded, "优惠 Discount") == "-￥5.00"
    assert value_of(decoded, "实付 Paid") == "￥45.00"
    assert value_of(decoded, "收银员 Cashier") == "王芳 007"
    assert "满50减5 ￥5 off orders over ￥50" in decoded.lines


def test_sale_without_discount_prints_only_the_amount_paid() -> None:
    decoded = printed(dataclasses.replace(SALE, discount_fen=0, promotions=(), coupon=None))
    assert not any(line.startswith(("原价", "优惠")) for line in decoded.lines)
    assert not any("COUPON" in line for line in decoded.lines)


def test_coupon_block_follows_the_thank_you_with_code_large() -> None:
    decoded = printed(SALE)
    flow = [mark for mark in decoded.flow if mark.kind == "text"]
    texts = [mark.value.strip() for mark in flow]
    start = texts.index("谢谢惠顾 Thank you")
    assert any("COUPON" in text for text in texts[start:])
    code = next(mark for mark in flow if mark.value.strip() == "CP-7F3K-92QX")
    assert code.height == 2 and code.bold
    assert value_of(decoded, "有效期至 Valid until") == "2024-06-30"


def test_sale_qr_is_the_order_number_so_a_refund_can_start_from_it() -> None:
    for native in (False, True):
        decoded = printed(SALE, native_qr=native)
        assert decoded.qr_payloads == [SALE.out_trade_no, SALE.out_trade_no]


def test_refund_receipt_shows_the_sale_the_refund_and_that_it_is_done() -> None:
    decoded = printed(dataclasses.replace(REFUND, refund_id="50300001234"))
    assert sum(line.strip() == "退款 REFUND" for line in decoded.lines) == 2  # both copies
    assert value_of(decoded, "原交易金额 Sale") == "￥45.00"
    assert value_of(decoded, "退款 Refund") == "-￥15.00"
    assert value_of(decoded, "退款单号 Refund no.") == "R20240501130000B2"
    assert value_of(decoded, "退款流水 Refund id") == "50300001234"
    assert [line.strip() for line in decoded.lines].count("退款成功 Refunded") == 2
    assert decoded.qr_payloads == []


def test_a_refund_still_on_its_way_says_so_and_not_that_it_is_done() -> None:
    under_way = dataclasses.replace(REFUND, result=RefundResult.UNDER_WAY)
    lines = [line.strip() for line in printed(under_way).lines]
    assert lines.count("退款处理中 Refund on its way") == 2
    assert "退款成功 Refunded" not in lines
    assert not any(line.startswith("退款流水") for line in lines)  # no id known: no empty line


def test_a_closed_refund_says_nothing_was_refunded() -> None:
    closed = dataclasses.replace(REFUND, result=RefundResult.CLOSED)
    lines = [line.strip() for line in printed(closed).lines]
    assert lines.count("退款已关闭 Refund closed:") == 2 and "nothing was refunded" in lines
    assert "退款成功 Refunded" not in lines


def test_refund_larger_than_the_sale_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        dataclasses.replace(REFUND, refund_fen=4501)


def test_void_receipt_returns_the_whole_amount() -> None:
    decoded = printed(VOID)
    assert value_of(decoded, "撤销 Void") == "-￥45.00"
    assert value_of(decoded, "原商户单号 Order no.") == "POS20240501120000A1"


def test_settlement_counts_and_totals_per_method_printed_once() -> None:
    decoded = printed(SETTLEMENT, cutter=True)
    assert decoded.flow.count(decoded.flow[-1]) == 1 and decoded.flow[-1].kind == "cut"
    assert not any("COPY" in line for line in decoded.lines)
    assert value_of(decoded, "消费 Sales  12笔") == "￥1,234.56"
    assert value_of(decoded, "消费 Sales  3笔") == "￥88.00"
    assert value_of(decoded, "退款 Refunds 1笔") == "-￥15.00"
    assert value_of(decoded, "退款 Refunds 0笔") == "￥0.00"
    assert value_of(decoded, "消费合计 Sales 15笔") == "￥1,322.56"
    assert value_of(decoded, "净额 Net") == "￥1,307.56"
    assert value_of(decoded, "起 From") == "2024-05-01 08:00:00"


def test_the_recovery_slip_lists_each_row_resolved_at_start_on_one_sheet() -> None:
    decoded = printed(RECOVERY, cutter=True)
    assert decoded.flow.count(decoded.flow[-1]) == 1 and decoded.flow[-1].kind == "cut"
    assert not any("COPY" in line for line in decoded.lines)
    lines = [line.strip() for line in decoded.lines]
    assert "开机核对 RECOVERY" in lines
    for number, outcome, amount in (
        ("POS20240501120000A1", "已收款 Paid", "￥45.00"),
        ("POS20240501120500A2", "已撤销 Reversed", "￥12.88"),
        ("R20240501130000B2", "已退款 Refunded", "￥15.00"),
    ):
        below = lines[lines.index(number) + 1]
        assert below.startswith(outcome) and below.endswith(amount)
    assert decoded.qr_payloads == []


@pytest.mark.parametrize("receipt", ALL, ids=lambda r: type(r).__name__)
def test_reprint_is_marked_on_every_copy_of_every_kind(receipt: Receipt) -> None:
    decoded = printed(dataclasses.replace(receipt, reprint=True))
    marks = sum("重印 REPRINT" in line for line in decoded.lines)
    assert marks == (1 if isinstance(receipt, SettlementReceipt | RecoveryReceipt) else 2)
    assert not any("重印" in line for line in printed(receipt).lines)


@pytest.mark.parametrize("receipt", ALL, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_every_kind_round_trips_through_the_decoder(receipt: Receipt, encoding: str) -> None:
    data = render_escpos(receipt, PrinterProfile(encoding=encoding), (Copy.CUSTOMER,))
    decoded = decode(data, encoding=encoding)
    expected = layout_text(receipt, PrinterProfile(), Copy.CUSTOMER)
    assert [line for line in decoded.lines if line] == [line for line in expected if line]
    assert decoded.unknown == [] and b"\x1bt" not in data


@pytest.mark.parametrize("columns", [24, 32, 42])
@pytest.mark.parametrize("receipt", ALL, ids=lambda r: type(r).__name__)
def test_long_names_wrap_within_the_columns_of_every_kind(receipt: Receipt, columns: int) -> None:
    long = dataclasses.replace(
        receipt,
        merchant_name="好邻居便利店（北京市海淀区中关村大街第一百二十三号分店）",
        cashier="Cashier with a remarkably long display name 收银员",
    )
    for copy in (Copy.MERCHANT, Copy.CUSTOMER):
        lines = layout_text(long, PrinterProfile(columns=columns), copy)
        assert all(printed_width(line) <= columns for line in lines)
    assert "".join(line.strip() for line in lines[:4]).startswith("好邻居便利店（北京市")
