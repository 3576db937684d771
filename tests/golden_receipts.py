"""Golden receipts: fixed sales and a refund, their exact ESC/POS bytes kept in tests/golden/.

Each case is one print job as the terminal sends it (merchant copy, then customer copy). The
`.bin` is the bytes, compared byte for byte by tests/test_receipt_golden.py; the `.txt` beside it
is those bytes decoded, so that a change of printed output reads as a text diff in review. When a
change is meant, regenerate both and commit them with it:

    .venv/bin/python -m tests.golden_receipts
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from hw_mocks.escpos_decode import decode, render_text
from pos_terminal.receipt import (
    BOTH_COPIES,
    WECHAT_CODE,
    WECHAT_NATIVE,
    Copy,
    Coupon,
    PrinterProfile,
    Receipt,
    RefundReceipt,
    SaleReceipt,
    render_escpos,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = ".venv/bin/python -m tests.golden_receipts"
CST = timezone(timedelta(hours=8))
HEAD = {
    "merchant_name": "好邻居便利店（南京西路店）",
    "store_id": "SH-0001",
    "terminal_id": "T0001",
    "cashier": "王芳 007",
}


@dataclass(frozen=True)
class Case:
    """One golden print job: a receipt, the printer it is laid out for, the copies printed."""

    receipt: Receipt
    profile: PrinterProfile = field(default_factory=PrinterProfile)
    copies: tuple[Copy, ...] = BOTH_COPIES

    def render(self) -> bytes:
        return render_escpos(self.receipt, self.profile, self.copies)


CODE_SALE = SaleReceipt(
    **HEAD,  # type: ignore[arg-type]
    time=datetime(2026, 3, 14, 9, 26, 53, tzinfo=CST),
    method=WECHAT_CODE,
    amount_fen=4500,
    discount_fen=500,
    out_trade_no="T0001202603140926530001",
    transaction_id="4200002026031409265312345678",
    masked_code="1345********6789",
    promotions=("满50减5 ¥5 off orders over ¥50",),
    coupon=Coupon("下次消费立减￥3", "CP-7F3K-92QX", date(2026, 4, 30), "限本店使用"),
)
QR_SALE = SaleReceipt(
    **HEAD,  # type: ignore[arg-type]
    time=datetime(2026, 3, 14, 12, 5, 7, tzinfo=CST),
    method=WECHAT_NATIVE,
    amount_fen=1288,
    out_trade_no="T0001202603141205070002",
    transaction_id="4200002026031412050798765432",
    masked_code=None,
)
REFUND = RefundReceipt(
    **HEAD,  # type: ignore[arg-type]
    time=datetime(2026, 3, 14, 15, 40, 2, tzinfo=CST),
    method=WECHAT_CODE,
    refund_fen=1500,
    sale_amount_fen=4500,
    out_trade_no=CODE_SALE.out_trade_no,
    out_refund_no="RT0001202603141540020001",
    refund_id="50300002026031415400212345678",
    masked_code=CODE_SALE.masked_code,
    reason="商品退货 returned goods",
)
CASES = {
    # the default 58 mm profile: raster QR, no cutter
    "code_sale": Case(CODE_SALE),
    # a printer with GS ( k and a cutter
    "qr_sale": Case(QR_SALE, PrinterProfile(native_qr=True, cutter=True)),
    "refund": Case(REFUND),
    "reprint": Case(dataclasses.replace(CODE_SALE, reprint=True)),
}


def golden_bytes(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.bin"


def golden_text(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.txt"


def preview(data: bytes) -> str:
    """The bytes as the mock printer's `.txt` shows them."""
    return render_text(decode(data))


def main() -> None:
    """Write every case's bytes and text preview, and drop files no case names."""
    GOLDEN_DIR.mkdir(exist_ok=True)
    for stale in GOLDEN_DIR.glob("*.bin"):
        if stale.stem not in CASES:
            stale.unlink()
            golden_text(stale.stem).unlink(missing_ok=True)
    for name, case in CASES.items():
        data = case.render()
        golden_bytes(name).write_bytes(data)
        golden_text(name).write_text(preview(data), encoding="utf-8")
        print(f"tests/golden/{name}.bin: {len(data)} bytes")


if __name__ == "__main__":
    main()
