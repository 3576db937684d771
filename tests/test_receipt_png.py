"""The receipt picture: CJK text, raster and native QR codes readable, boxes without a font."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageOps

from hw_mocks.escpos_decode import decode
from hw_mocks.receipt_png import ReceiptPainter, find_cjk_font
from pos_terminal.receipt import WECHAT_CODE, Copy, PrinterProfile, SaleReceipt, render_escpos

RECEIPT = SaleReceipt(
    merchant_name="好邻居便利店",
    store_id="S001",
    terminal_id="T01",
    time=datetime(2024, 5, 1, 12, 34, 56, tzinfo=timezone(timedelta(hours=8))),
    method=WECHAT_CODE,
    amount_fen=1234,
    out_trade_no="POS20240501123456A1",
    transaction_id="4200001234202405011234567890",
    masked_code="1345********6789",
)
needs_cjk_font = pytest.mark.skipif(
    find_cjk_font() is None, reason="no CJK font: apt-get install fonts-wqy-microhei"
)


def picture(native_qr: bool, painter: ReceiptPainter | None = None) -> Image.Image:
    data = render_escpos(RECEIPT, PrinterProfile(native_qr=native_qr), (Copy.CUSTOMER,))
    return (painter or ReceiptPainter()).paint(decode(data))


def qr_in(image: Image.Image) -> list[str]:
    framed = ImageOps.expand(image, border=16, fill=255)
    return [r.text for r in zxingcpp.read_barcodes(framed, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.mark.parametrize("native_qr", [False, True])
def test_picture_is_paper_wide_and_its_qr_scans_to_the_order_number(native_qr: bool) -> None:
    image = picture(native_qr)
    assert image.width == 384 and image.height > 600
    assert qr_in(image) == ["POS20240501123456A1"]


@needs_cjk_font
def test_chinese_title_is_drawn_with_ink_where_the_text_is() -> None:
    image = picture(False)
    title = image.crop((0, 0, 384, 60))  # the merchant name, double height, centred
    left, _, right, _ = ImageOps.invert(title).getbbox() or (0, 0, 0, 0)
    assert left > 100 and right < 284  # six Hanzi at 24 dots, centred on 384 dots


def test_without_a_cjk_font_hanzi_become_boxes_not_a_crash() -> None:
    painter = ReceiptPainter(find_font=lambda: None)
    image = picture(False, painter)
    assert not painter.cjk
    assert image.width == 384 and qr_in(image) == ["POS20240501123456A1"]


def test_painting_a_receipt_is_cheap_once_the_font_is_loaded(tmp_path: Path) -> None:
    painter = ReceiptPainter()
    decoded = decode(render_escpos(RECEIPT, PrinterProfile()))
    painter.save(decoded, tmp_path / "warm.png")
    started = time.perf_counter()
    painter.save(decoded, tmp_path / "r.png")
    assert time.perf_counter() - started < 0.5  # about 10 ms on a laptop; generous for CI
    assert Image.open(tmp_path / "r.png").size[0] == 384
