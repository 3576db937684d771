"""The receipt API in one import: data, layout, widths, encoder and ESC/POS rendering.

The work is done in pos_terminal/receipts/ (text, methods, model, layout, escpos); this module
names it.
"""

from __future__ import annotations

from pos_terminal.receipts.escpos import qr_module_dots, render_escpos
from pos_terminal.receipts.layout import Row, Style, layout_rows, layout_sale, layout_text
from pos_terminal.receipts.methods import WECHAT_CODE, WECHAT_NATIVE, PaymentMethod, method_named
from pos_terminal.receipts.model import (
    BOTH_COPIES,
    Copy,
    Coupon,
    MethodTotals,
    PrinterProfile,
    Receipt,
    ReceiptHeader,
    RecoveredLine,
    RecoveryReceipt,
    RefundReceipt,
    RefundResult,
    SaleReceipt,
    SettlementReceipt,
    VoidReceipt,
)
from pos_terminal.receipts.text import (
    ENCODINGS,
    TextEncoder,
    char_width,
    display_width,
    printed_width,
    wrap_columns,
)

__all__ = [
    "BOTH_COPIES",
    "ENCODINGS",
    "WECHAT_CODE",
    "WECHAT_NATIVE",
    "Copy",
    "Coupon",
    "MethodTotals",
    "PaymentMethod",
    "PrinterProfile",
    "Receipt",
    "ReceiptHeader",
    "RecoveredLine",
    "RecoveryReceipt",
    "RefundReceipt",
    "RefundResult",
    "Row",
    "SaleReceipt",
    "SettlementReceipt",
    "Style",
    "TextEncoder",
    "VoidReceipt",
    "char_width",
    "display_width",
    "layout_rows",
    "layout_sale",
    "layout_text",
    "method_named",
    "printed_width",
    "qr_module_dots",
    "render_escpos",
    "wrap_columns",
]
