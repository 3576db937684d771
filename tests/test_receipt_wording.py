"""Receipt wording: whose copy it is, as the payment method words it, and what the QR is for."""

from __future__ import annotations

import dataclasses

import pytest

from hw_mocks.escpos_decode import decode
from pos_terminal.journal import Method
from pos_terminal.receipt import (
    Copy,
    PaymentMethod,
    PrinterProfile,
    Receipt,
    SaleReceipt,
    method_named,
    render_escpos,
)
from tests.test_receipt_kinds import REFUND, SALE, VOID

BANK_CARD = PaymentMethod("银联卡 UnionPay card", "持卡人存根 CARDHOLDER COPY", "卡号 Card no.")
WECHAT_KINDS = (SALE, dataclasses.replace(SALE, reprint=True), REFUND, VOID)


def copy_lines(receipt: Receipt, copy: Copy) -> list[str]:
    """One copy as printed, each line stripped of its centring."""
    return [
        line.strip() for line in decode(render_escpos(receipt, PrinterProfile(), (copy,))).lines
    ]


@pytest.mark.parametrize("receipt", WECHAT_KINDS, ids=["sale", "reprint", "refund", "void"])
def test_a_wechat_receipt_never_speaks_of_a_cardholder(receipt: Receipt) -> None:
    merchant, customer = copy_lines(receipt, Copy.MERCHANT), copy_lines(receipt, Copy.CUSTOMER)
    assert "商户存根 MERCHANT COPY" in merchant and "顾客存根 CUSTOMER COPY" not in merchant
    assert "顾客存根 CUSTOMER COPY" in customer and "商户存根 MERCHANT COPY" not in customer
    assert not any("持卡人" in line or "CARDHOLDER" in line for line in merchant + customer)


@pytest.mark.parametrize(
    "receipt",
    [
        dataclasses.replace(SALE, method=BANK_CARD, masked_code="622202******1234"),
        dataclasses.replace(REFUND, method=BANK_CARD, masked_code="622202******1234"),
    ],
    ids=["sale", "refund"],
)
def test_the_customer_copy_and_reference_are_worded_by_the_payment_method(
    receipt: Receipt,
) -> None:
    customer = copy_lines(receipt, Copy.CUSTOMER)
    assert "持卡人存根 CARDHOLDER COPY" in customer and "顾客存根 CUSTOMER COPY" not in customer
    assert any(line.startswith("卡号 Card no.") for line in customer)
    assert not any(line.startswith("付款码") for line in customer)
    assert "商户存根 MERCHANT COPY" in copy_lines(receipt, Copy.MERCHANT)


def test_the_customer_is_told_to_show_the_qr_and_the_merchant_to_scan_it() -> None:
    merchant, customer = copy_lines(SALE, Copy.MERCHANT), copy_lines(SALE, Copy.CUSTOMER)
    assert "扫码查单 Scan to find the order" in merchant
    assert "退款请出示此码" in customer and "Show this code for a refund" in customer
    assert not any("Scan to refund" in line or "扫码退款" in line for line in merchant + customer)


def test_thanks_and_the_coupon_are_on_the_customer_copy_only() -> None:
    merchant, customer = copy_lines(SALE, Copy.MERCHANT), copy_lines(SALE, Copy.CUSTOMER)
    assert "谢谢惠顾 Thank you" in customer and "CP-7F3K-92QX" in customer
    assert "谢谢惠顾 Thank you" not in merchant and "CP-7F3K-92QX" not in merchant
    assert "满50减5 ￥5 off orders over ￥50" in merchant  # what was charged stays on both


def test_a_sale_without_a_transaction_id_prints_no_empty_txn_line() -> None:
    receipt: SaleReceipt = dataclasses.replace(SALE, transaction_id="")
    assert not any(line.startswith("交易单号") for line in copy_lines(receipt, Copy.CUSTOMER))


def test_the_method_line_tells_a_payment_code_from_a_scanned_qr() -> None:
    assert method_named(Method.WECHAT_CODE).label == "微信支付 WeChat Pay 付款码"
    assert method_named(Method.WECHAT_NATIVE).label == "微信支付 WeChat Pay 扫码"


def test_every_journal_method_has_receipt_wording() -> None:
    for method in Method:
        assert method_named(method).customer_copy


def test_a_method_without_wording_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no receipt wording for payment method 'cash'"):
        method_named("cash")
