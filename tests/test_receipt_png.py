"""The receipt picture: font A cells for Latin, 24-dot cells for Hanzi, QR codes that scan, and
boxes plus one notice on screen when a font is missing."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image, ImageOps

from hw_mocks import receipt_png
from hw_mocks.escpos_decode import decode
from hw_mocks.printer import MockPrinter
from hw_mocks.receipt_png import MARGIN_DOTS, ReceiptPainter, find_cjk_font, find_latin_font
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
needs_latin_font = pytest.mark.skipif(
    find_latin_font() is None, reason="no monospace font: apt-get install fonts-dejavu-core"
)
INK = 128  # darker than this is a printed dot


def picture(native_qr: bool, painter: ReceiptPainter | None = None) -> Image.Image:
    data = render_escpos(RECEIPT, PrinterProfile(native_qr=native_qr), (Copy.CUSTOMER,))
    return (painter or ReceiptPainter()).paint(decode(data))


def first_line_image(text: str, painter: ReceiptPainter | None = None) -> Image.Image:
    """`text` printed as the first line of a receipt, left-aligned, 24 dots high."""
    data = b"\x1b@" + text.encode("gb18030") + b"\n"
    image = (painter or ReceiptPainter()).paint(decode(data))
    return image.crop((0, MARGIN_DOTS, image.width, MARGIN_DOTS + 24))


def first_line(text: str, painter: ReceiptPainter | None = None) -> np.ndarray:
    """The dots of `first_line_image`: True where there is ink."""
    return np.asarray(first_line_image(text, painter)) < INK


def ink_columns(dots: np.ndarray) -> np.ndarray:
    return np.flatnonzero(dots.any(axis=0))


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


@needs_latin_font
@pytest.mark.parametrize("letter", list("AHMOTUVWXY08"))
def test_a_wide_latin_letter_is_drawn_whole_in_its_12_dot_cell(letter: str) -> None:
    # these letters are mirror-symmetric: a glyph cut at the cell's edge (M read as N, W as V,
    # O as C) loses ink on one side only
    ink = 255 - np.asarray(first_line_image(letter), dtype=float)[:, :12]
    left, right = ink[:, :6].sum(), ink[:, 6:].sum()
    assert left > 0 and 0.9 < right / left < 1.1
    assert not first_line(letter)[:, 12:].any()  # and nothing spills into the next cell


@needs_latin_font
@pytest.mark.parametrize("start", [0x21, 0x21 + 32, 0x21 + 64])
def test_every_latin_glyph_stays_in_its_cell_apart_from_its_neighbours(start: int) -> None:
    text = "".join(chr(code) for code in range(start, min(start + 32, 0x7F)))
    dots = first_line(text)
    for index, char in enumerate(text):
        cell = dots[:, 12 * index : 12 * index + 12]
        assert cell.any(), char
        alone = first_line(char)
        assert (alone[:, :12] == cell).all() and not alone[:, 12:].any(), char
        if index:  # a blank column between two glyphs: cells never merge
            assert not dots[:, 12 * index - 1 : 12 * index + 1].all(axis=1).any(), text[index - 1 :]


@needs_cjk_font
@needs_latin_font
def test_a_hanzi_takes_24_dots_and_the_latin_letter_after_it_12() -> None:
    dots = first_line("国M国")
    hanzi, latin, second = ink_columns(dots[:, :24]), ink_columns(dots[:, 24:36]), dots[:, 36:60]
    assert hanzi[0] >= 1 and hanzi[-1] <= 22 and hanzi.size >= 16  # fills its double cell
    assert latin[0] > 0 and latin[-1] < 11  # the letter sits inside its own single cell
    assert (second == dots[:, :24]).all()  # the same glyph, the same dots, cell after cell


@needs_cjk_font
@needs_latin_font
def test_with_both_fonts_no_advice_is_given() -> None:
    assert ReceiptPainter().font_advice == ""


def test_without_fonts_the_advice_names_the_packages_to_install() -> None:
    painter = ReceiptPainter(find_font=lambda: None, find_latin=lambda: None)
    assert "apt-get install fonts-wqy-microhei fonts-dejavu-core" in painter.font_advice
    dots = first_line("AB", painter)
    assert ink_columns(dots[:, :12]).size and ink_columns(dots[:, 12:24]).size  # still legible


def test_a_mock_printer_without_a_cjk_font_says_so_once_on_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receipt_png, "CJK_FONT_CANDIDATES", ())
    monkeypatch.setenv("PATH", "")  # no fc-list to ask either
    notices: list[tuple[str, str]] = []
    data = render_escpos(RECEIPT, PrinterProfile())

    async def two_receipts(png: bool) -> None:
        printer = MockPrinter(tmp_path, png=png)
        await printer.open(lambda device, message: notices.append((device, message)))
        await printer.print_job("one", data)
        await printer.print_job("two", data)
        await printer.close()

    asyncio.run(two_receipts(png=False))
    assert notices == []
    asyncio.run(two_receipts(png=True))
    [(device, message)] = notices
    assert "PNG" in device and "apt-get install fonts-wqy-microhei" in message
    assert (tmp_path / "two.png").is_file()
