"""The sale receipt, checked through our decoder: layout, widths, encodings, QR, cut, copies."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_mocks.escpos_decode import DecodedReceipt, decode
from pos_terminal.receipt import (
    WECHAT_NATIVE,
    Copy,
    PrinterProfile,
    SaleReceipt,
    TextEncoder,
    display_width,
    layout_sale,
    render_escpos,
    wrap_columns,
)

CST = timezone(timedelta(hours=8))
LONG_NAME = "好邻居便利店（北京市海淀区中关村大街第一百二十三号分店）"


def sale(**changes: object) -> SaleReceipt:
    receipt = SaleReceipt(
        merchant_name="好邻居便利店",
        store_id="S001",
        terminal_id="T01",
        time=datetime(2024, 5, 1, 12, 34, 56, tzinfo=CST),
        method=WECHAT_NATIVE,
        amount_fen=1234,
        out_trade_no="1217752501201407033233368018",
        transaction_id="4200001234202405011234567890",
        masked_code="1345********6789",
    )
    return dataclasses.replace(receipt, **changes)  # type: ignore[arg-type]


def printed(
    receipt: SaleReceipt,
    profile: PrinterProfile | None = None,
    copies: tuple[Copy, ...] = (Copy.CUSTOMER,),
) -> DecodedReceipt:
    profile = profile or PrinterProfile()
    return decode(render_escpos(receipt, profile, copies), encoding=profile.encoding)


def line_with(decoded: DecodedReceipt, label: str) -> str:
    [line] = [line for line in decoded.lines if line.startswith(label)]
    return line


def test_amount_is_right_aligned_at_column_32() -> None:
    line = line_with(printed(sale()), "实付 Paid")
    assert line.endswith("￥12.34") and display_width(line) == 32


def test_every_field_is_printed_with_its_value() -> None:
    decoded = printed(sale())
    assert line_with(decoded, "门店 Store").endswith("S001")
    assert line_with(decoded, "终端 Terminal").endswith("T01")
    assert line_with(decoded, "时间 Time").endswith("2024-05-01 12:34:56")
    assert line_with(decoded, "付款码 Code").endswith("1345********6789")
    text = "\n".join(decoded.lines)
    for value in ("微信支付 WeChat Pay 扫码", "1217752501201407033233368018", "谢谢惠顾 Thank you"):
        assert value in text


def test_decoded_text_is_the_layout() -> None:
    decoded = printed(sale(merchant_name=LONG_NAME))
    assert [line for line in decoded.lines if line] == [
        line for line in layout_sale(sale(merchant_name=LONG_NAME), PrinterProfile()) if line
    ]


def test_raster_qr_decodes_to_the_order_number() -> None:
    decoded = printed(sale())
    assert decoded.qr_payloads == ["1217752501201407033233368018"]
    [image] = decoded.images
    assert image.width <= 384


def test_native_qr_carries_the_order_number_without_an_image() -> None:
    decoded = printed(sale(), PrinterProfile(native_qr=True))
    assert decoded.qr_payloads == ["1217752501201407033233368018"]
    assert decoded.images == []


def test_native_qr_receipt_selects_no_code_page() -> None:
    data = render_escpos(sale(), PrinterProfile(native_qr=True))
    assert b"\x1bt" not in data  # no python-escpos code-page magic (ESC t)
    assert decode(data).unknown == []


def test_printer_with_a_cutter_cuts_and_one_without_does_not() -> None:
    assert printed(sale(), PrinterProfile(cutter=True)).cut
    plain = printed(sale())
    assert not plain.cut and plain.lines[-1] == ""  # fed past the tear bar instead


def test_long_chinese_merchant_name_wraps_on_column_boundaries() -> None:
    lines = layout_sale(sale(merchant_name=LONG_NAME), PrinterProfile())
    head = [line.strip() for line in lines[:2]]
    assert "".join(head) == LONG_NAME
    assert display_width(lines[0]) == 32 and all(display_width(line) <= 32 for line in lines)


def test_wrapping_never_splits_a_wide_character_and_keeps_words() -> None:
    assert wrap_columns("一二三四五", 5) == ["一二", "三四", "五"]
    assert wrap_columns("Lucky Star 幸运星", 12) == ["Lucky Star", "幸运星"]
    assert wrap_columns("A" * 40, 16) == ["A" * 16, "A" * 16, "A" * 8]


def test_display_width_counts_wide_as_two_and_combining_as_zero() -> None:
    assert display_width("金额 ￥12.34") == 2 + 2 + 1 + 2 + 5
    assert display_width("e\u0301") == 1
    assert display_width("·", ambiguous=2) == 2


def test_reprint_is_marked_and_missing_code_is_left_out() -> None:
    decoded = printed(sale(reprint=True, masked_code=None))
    assert any("重印 REPRINT" in line for line in decoded.lines)
    assert not any(line.startswith("付款码") for line in decoded.lines)


@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_chinese_text_round_trips_in_both_encodings(encoding: str) -> None:
    name = "好邻居·café（中关村）"
    decoded = printed(sale(merchant_name=name), PrinterProfile(encoding=encoding))
    assert decoded.lines[0].strip() == name
    assert line_with(decoded, "实付 Paid").endswith("￥12.34")


def test_half_width_yen_sign_is_printed_full_width() -> None:
    assert TextEncoder("gbk").encode("¥5") == "￥5".encode("gbk")
    decoded = printed(sale(merchant_name="¥ 小卖部"), PrinterProfile(encoding="gbk"))
    assert decoded.lines[0].strip() == "￥ 小卖部"


def test_character_outside_gbk_prints_as_question_mark_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "𠮷野家 𠮷"  # U+20BB7 is in GB18030 but not in GBK
    with caplog.at_level(logging.WARNING, logger="pos_terminal.receipts.text"):
        gbk = printed(sale(merchant_name=name), PrinterProfile(encoding="gbk"))
    assert gbk.lines[0].strip() == "?野家 ?"
    assert len(caplog.records) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pos_terminal.receipts.text"):
        gb18030 = printed(sale(merchant_name=name))
    assert gb18030.lines[0].strip() == name and caplog.records == []


def test_receipts_refuse_naive_times_and_negative_amounts() -> None:
    with pytest.raises(ValueError, match="timezone"):
        sale(time=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError, match="amount"):
        sale(amount_fen=-1)
    with pytest.raises(ValueError, match="encoding"):
        PrinterProfile(encoding="cp437")


names = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("（）·—，。￥¥éｱ\u0301"),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(
    name=names,
    fen=st.integers(min_value=0, max_value=999_999_999),
    ascii_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
    ),
)
def test_every_line_fits_32_columns(name: str, fen: int, ascii_id: str) -> None:
    receipt = sale(merchant_name=name, amount_fen=fen, out_trade_no=ascii_id, store_id=ascii_id)
    lines = layout_sale(receipt, PrinterProfile())
    assert all(display_width(line, ambiguous=2) <= 32 for line in lines)
    amount = line_with(printed(receipt, PrinterProfile(native_qr=True)), "实付 Paid")
    assert amount.endswith(f"{fen // 100:,}.{fen % 100:02d}") and display_width(amount) == 32


def test_one_job_holds_the_merchant_copy_then_the_customer_copy() -> None:
    decoded = printed(sale(), PrinterProfile(cutter=True), copies=(Copy.MERCHANT, Copy.CUSTOMER))
    labels = [line.strip() for line in decoded.lines if "COPY" in line]
    assert labels == ["商户存根 MERCHANT COPY", "顾客存根 CUSTOMER COPY"]
    assert [mark.kind for mark in decoded.flow].count("cut") == 2
    assert decoded.qr_payloads == [sale().out_trade_no] * 2


def test_default_job_prints_both_copies() -> None:
    data = render_escpos(sale(), PrinterProfile())
    assert sum("COPY" in line for line in decode(data).lines) == 2
