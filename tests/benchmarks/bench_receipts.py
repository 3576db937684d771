"""Receipt benchmark: bytes of a standard sale receipt (both copies), native vs raster QR, and
the time to send it over a serial line (8N1: 10 bits a byte) at 9600 and 115200 baud.

Run: `python -m tests.benchmarks.bench_receipts`. Figures are printed, never asserted.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from hw_mocks.escpos_decode import decode
from pos_terminal.receipt import (
    BOTH_COPIES,
    WECHAT_CODE,
    Copy,
    PrinterProfile,
    SaleReceipt,
    render_escpos,
)

BAUDS = (9600, 115200)
BITS_PER_BYTE = 10  # start + 8 data + stop
AIM_BYTES_PER_COPY = 2048

STANDARD_SALE = SaleReceipt(
    merchant_name="好邻居便利店（中关村店）",
    store_id="S001",
    terminal_id="T01",
    cashier="007",
    time=datetime(2024, 5, 1, 12, 34, 56, tzinfo=timezone(timedelta(hours=8))),
    method=WECHAT_CODE,
    amount_fen=4500,
    discount_fen=500,
    out_trade_no="1217752501201407033233368018",  # 28 characters, WeChat's usual length
    transaction_id="4200001234202405011234567890",
    masked_code="1345********6789",
    promotions=("满50减5 ￥5 off orders over ￥50",),
)


def render_ms(profile: PrinterProfile, rounds: int = 20) -> float:
    render_escpos(STANDARD_SALE, profile)  # warm: python-escpos loads its profile database
    started = time.perf_counter()
    for _ in range(rounds):
        render_escpos(STANDARD_SALE, profile)
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    print("standard sale receipt, merchant + customer copy in one job, POS-5890 profile")
    header = f"{'QR':<8}{'job bytes':>10}{'per copy':>10}{'render ms':>11}"
    print(header + "".join(f"{f'send @{baud}':>14}" for baud in BAUDS) + "  aim")
    for native in (True, False):
        profile = PrinterProfile(native_qr=native)
        job = render_escpos(STANDARD_SALE, profile, BOTH_COPIES)
        one = render_escpos(STANDARD_SALE, profile, (Copy.CUSTOMER,))
        assert decode(job).qr_payloads == [STANDARD_SALE.out_trade_no] * 2
        sends = "".join(f"{len(job) * BITS_PER_BYTE / baud:>13.2f}s" for baud in BAUDS)
        verdict = "ok" if len(one) < AIM_BYTES_PER_COPY else "over 2 KB"
        label = "native" if native else "raster"
        print(
            f"{label:<8}{len(job):>10}{len(one):>10}{render_ms(profile):>11.1f}{sends}  {verdict}"
        )


if __name__ == "__main__":
    main()
