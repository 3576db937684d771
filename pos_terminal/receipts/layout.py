"""Receipt layout: each receipt kind as rows of at most `columns` printed columns, top to bottom."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pos_terminal.money import format_receipt_yuan
from pos_terminal.receipts.methods import PaymentMethod
from pos_terminal.receipts.model import (
    Copy,
    PrinterProfile,
    Receipt,
    ReceiptHeader,
    RecoveryReceipt,
    RefundReceipt,
    RefundResult,
    SaleReceipt,
    SettlementReceipt,
    VoidReceipt,
)
from pos_terminal.receipts.text import clean, printed_width, wrap_columns

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REPRINT_MARK = "** 重印 REPRINT **"
MERCHANT_STUB = "商户存根 MERCHANT COPY"
# the sale's QR holds its order number: the terminal scans it to reprint or refund that sale
MERCHANT_QR_NOTE = "扫码查单 Scan to find the order"
CUSTOMER_QR_NOTE = ("退款请出示此码", "Show this code for a refund")
REFUND_RESULTS = {
    RefundResult.DONE: "退款成功 Refunded",
    RefundResult.UNDER_WAY: "退款处理中 Refund on its way",
    RefundResult.CLOSED: "退款已关闭 Refund closed: nothing was refunded",
}
RECOVERY_NOTE = (
    "以上交易在断电或重启前未完成,",
    "开机时已与微信支付核对",
    "Unfinished before a restart;",
    "settled with WeChat Pay at start",
)


class Style(Enum):
    NORMAL = "normal"
    TITLE = "title"  # bold, double height (width stays one column per cell)
    AMOUNT = "amount"  # bold, double height


@dataclass(frozen=True)
class Row:
    """One printed row: a line of text, or a QR code of `qr` when that is set."""

    text: str
    style: Style = Style.NORMAL
    qr: str | None = None


class _Sheet:
    """Rows being laid out at a fixed width."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.rows: list[Row] = []

    def centred(self, text: str, style: Style = Style.NORMAL) -> None:
        for line in wrap_columns(clean(text), self.columns):
            pad = (self.columns - printed_width(line)) // 2
            self.rows.append(Row(" " * pad + line, style))

    def text(self, text: str) -> None:
        self.rows += [Row(line) for line in wrap_columns(clean(text), self.columns)]

    def field(self, label: str, value: str, style: Style = Style.NORMAL) -> None:
        """`label      value` on one line, value right-aligned; a long value goes below, wrapped."""
        label, value = clean(label), clean(value).strip()
        gap = self.columns - printed_width(label) - printed_width(value)
        if gap >= 1:
            self.rows.append(Row((label + " " * gap + value).rstrip(), style))
            return
        self.rows += [Row(line, style) for line in wrap_columns(label, self.columns)]
        for line in wrap_columns(value, self.columns):
            self.rows.append(Row(" " * (self.columns - printed_width(line)) + line, style))

    def money(self, label: str, fen: int, style: Style = Style.NORMAL, sign: str = "") -> None:
        self.field(label, (sign if fen else "") + format_receipt_yuan(fen), style)

    def rule(self, char: str = "-") -> None:
        self.rows.append(Row(char * self.columns))

    def blank(self) -> None:
        self.rows.append(Row(""))

    def qr(self, payload: str) -> None:
        self.rows.append(Row("", qr=payload))


def _header(sheet: _Sheet, receipt: ReceiptHeader, title: str, stub: str) -> None:
    sheet.centred(receipt.merchant_name, Style.TITLE)
    sheet.centred(title)
    if stub:
        sheet.centred(stub)
    if receipt.reprint:
        sheet.centred(REPRINT_MARK)
    sheet.rule()
    sheet.field("门店 Store", receipt.store_id)
    sheet.field("终端 Terminal", receipt.terminal_id)
    if receipt.cashier:
        sheet.field("收银员 Cashier", receipt.cashier)
    sheet.field("时间 Time", receipt.time.strftime(TIME_FORMAT))


def _stub(copy: Copy | None, method: PaymentMethod) -> str:
    """The line naming the copy: the merchant's, or the customer's as the method words it."""
    if copy is None:
        return ""
    return MERCHANT_STUB if copy is Copy.MERCHANT else method.customer_copy


def _payment(sheet: _Sheet, method: PaymentMethod, masked_reference: str | None) -> None:
    sheet.field("支付方式 Method", method.label)
    if masked_reference:
        sheet.field(method.reference_label, masked_reference)


def _sale(sheet: _Sheet, receipt: SaleReceipt, copy: Copy | None) -> None:
    _header(sheet, receipt, "消费 SALE", _stub(copy, receipt.method))
    _payment(sheet, receipt.method, receipt.masked_code)
    sheet.rule()
    if receipt.discount_fen:
        sheet.money("原价 Original", receipt.original_fen)
        sheet.money("优惠 Discount", receipt.discount_fen, sign="-")
    sheet.money("实付 Paid", receipt.amount_fen, Style.AMOUNT)
    for line in receipt.promotions:
        sheet.text(line)
    sheet.rule()
    sheet.field("商户单号 Order no.", receipt.out_trade_no)
    if receipt.transaction_id:
        sheet.field("交易单号 Txn id", receipt.transaction_id)
    sheet.rule()
    sheet.qr(receipt.out_trade_no)
    if copy is Copy.MERCHANT:
        sheet.centred(MERCHANT_QR_NOTE)
    else:
        _customer_foot(sheet, receipt)


def _customer_foot(sheet: _Sheet, receipt: SaleReceipt) -> None:
    """What only the customer's copy has below the QR: how to use it, thanks, the coupon."""
    for line in CUSTOMER_QR_NOTE:
        sheet.centred(line)
    sheet.centred("谢谢惠顾 Thank you")
    coupon = receipt.coupon
    if coupon is None:
        return
    sheet.blank()
    sheet.centred(" 优惠券 COUPON ".center(sheet.columns - 8, "-"))
    sheet.centred(coupon.title, Style.TITLE)
    sheet.centred(coupon.code, Style.AMOUNT)
    if coupon.valid_until is not None:
        sheet.field("有效期至 Valid until", coupon.valid_until.isoformat())
    if coupon.terms:
        sheet.text(coupon.terms)
    sheet.rule()


def _refund(sheet: _Sheet, receipt: RefundReceipt, copy: Copy | None) -> None:
    _header(sheet, receipt, "退款 REFUND", _stub(copy, receipt.method))
    _payment(sheet, receipt.method, receipt.masked_code)
    sheet.rule()
    sheet.money("原交易金额 Sale", receipt.sale_amount_fen)
    sheet.money("退款 Refund", receipt.refund_fen, Style.AMOUNT, sign="-")
    if receipt.reason:
        sheet.field("原因 Reason", receipt.reason)
    sheet.rule()
    sheet.field("原商户单号 Order no.", receipt.out_trade_no)
    sheet.field("退款单号 Refund no.", receipt.out_refund_no)
    if receipt.refund_id:
        sheet.field("退款流水 Refund id", receipt.refund_id)
    sheet.rule()
    sheet.centred(REFUND_RESULTS[receipt.result])


def _void(sheet: _Sheet, receipt: VoidReceipt, copy: Copy | None) -> None:
    _header(sheet, receipt, "撤销 VOID", _stub(copy, receipt.method))
    _payment(sheet, receipt.method, receipt.masked_code)
    sheet.rule()
    sheet.money("撤销 Void", receipt.amount_fen, Style.AMOUNT, sign="-")
    sheet.rule()
    sheet.field("原商户单号 Order no.", receipt.out_trade_no)
    if receipt.transaction_id:
        sheet.field("交易单号 Txn id", receipt.transaction_id)


def _settlement(sheet: _Sheet, receipt: SettlementReceipt) -> None:
    _header(sheet, receipt, "结算单 SETTLEMENT", "")
    sheet.field("批次 Batch", receipt.batch_no)
    sheet.field("起 From", receipt.period_start.strftime(TIME_FORMAT))
    sheet.field("止 To", receipt.time.strftime(TIME_FORMAT))
    for totals in receipt.methods:
        sheet.rule()
        sheet.text(totals.method.label)
        sheet.money(f"消费 Sales  {totals.sale_count}笔", totals.sale_fen)
        sheet.money(f"退款 Refunds {totals.refund_count}笔", totals.refund_fen, sign="-")
    sheet.rule("=")
    sales = sum(t.sale_count for t in receipt.methods)
    refunds = sum(t.refund_count for t in receipt.methods)
    sheet.money(f"消费合计 Sales {sales}笔", sum(t.sale_fen for t in receipt.methods))
    sheet.money(
        f"退款合计 Refunds {refunds}笔", sum(t.refund_fen for t in receipt.methods), sign="-"
    )
    net = sum(t.net_fen for t in receipt.methods)
    sheet.money("净额 Net", abs(net), Style.AMOUNT, sign="-" if net < 0 else "")


def _recovery(sheet: _Sheet, receipt: RecoveryReceipt) -> None:
    _header(sheet, receipt, "开机核对 RECOVERY", "")
    for line in receipt.lines:
        sheet.rule()
        sheet.text(line.number)
        sheet.money(line.outcome, line.amount_fen)
    sheet.rule("=")
    for note in RECOVERY_NOTE:
        sheet.text(note)


def copies_of(receipt: Receipt, wanted: tuple[Copy, ...]) -> tuple[Copy | None, ...]:
    """The copies a job prints: a settlement or recovery summary is one unlabelled sheet."""
    if isinstance(receipt, SettlementReceipt | RecoveryReceipt) or not wanted:
        return (None,)
    return wanted


def layout_rows(receipt: Receipt, profile: PrinterProfile, copy: Copy | None = None) -> list[Row]:
    """One copy of the receipt top to bottom, text rows no wider than `profile.columns`."""
    sheet = _Sheet(profile.columns)
    if isinstance(receipt, SaleReceipt):
        _sale(sheet, receipt, copy)
    elif isinstance(receipt, RefundReceipt):
        _refund(sheet, receipt, copy)
    elif isinstance(receipt, VoidReceipt):
        _void(sheet, receipt, copy)
    elif isinstance(receipt, RecoveryReceipt):
        _recovery(sheet, receipt)
    else:
        _settlement(sheet, receipt)
    return sheet.rows


def layout_text(receipt: Receipt, profile: PrinterProfile, copy: Copy | None = None) -> list[str]:
    """The text lines of one copy (QR codes left out), each at most `profile.columns` wide."""
    return [row.text for row in layout_rows(receipt, profile, copy) if row.qr is None]


def layout_sale(
    receipt: SaleReceipt, profile: PrinterProfile, copy: Copy | None = Copy.CUSTOMER
) -> list[str]:
    """The customer copy's text lines of a sale (what the console shows)."""
    return layout_text(receipt, profile, copy)
