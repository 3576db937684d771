"""Our ESC/POS decoder, fed by python-escpos itself and by hand-made and random bytes."""

from __future__ import annotations

from escpos.printer import Dummy
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_mocks.escpos_decode import decode, render_text

URL = "weixin://wxpay/bizpayurl?pr=abc123"
GS_V0 = b"\x1dv0\x00"


def dummy() -> Dummy:
    return Dummy(profile="POS-5890")


def test_text_lines_split_on_line_feeds_and_print_and_feed() -> None:
    decoded = decode(b"\x1b@one\ntwo\x1bd\x02three")
    assert decoded.lines == ["one", "two", "", "three"]
    assert decoded.unknown == []


def test_initialise_discards_the_unprinted_buffer() -> None:
    assert decode(b"lost\x1b@kept\n").lines == ["kept"]


def test_style_and_mode_commands_are_skipped_with_their_parameters() -> None:
    styles = b"\x1b!\x30\x1bE\x01\x1ba\x01\x1dB\x00\x1d!\x11\x1bt\x00"
    modes = b"\x1c&\x1c.\x10\x04\x01\x1bp\x00\x19\xfa"
    data = styles + modes + b"ok\r\n"
    decoded = decode(data)
    assert decoded.lines == ["ok"] and decoded.unknown == []


def test_gb18030_and_gbk_text_decode_with_the_given_encoding() -> None:
    text = "合计 ￥12.50 谢谢"
    assert decode(text.encode("gbk") + b"\n", encoding="gbk").lines == [text]
    rare = "𠮷野家"
    assert decode(rare.encode("gb18030") + b"\n").lines == [rare]


def test_native_qr_payload_is_taken_from_the_store_function() -> None:
    printer = dummy()
    printer.qr(URL, native=True, size=6)
    decoded = decode(printer.output)
    assert decoded.qr_payloads == [URL] and decoded.images == [] and decoded.unknown == []


def test_raster_qr_is_read_back_with_zxing() -> None:
    printer = dummy()
    printer.qr(URL, native=False, size=4)
    decoded = decode(printer.output)
    assert decoded.qr_payloads == [URL]
    [image] = decoded.images
    assert image.mode == "1" and image.width % 8 == 0


def test_graphics_and_column_images_are_understood() -> None:
    printer = dummy()
    printer.qr(URL, native=False, size=4, image_arguments={"impl": "graphics"})
    printer.qr("column", native=False, size=4, image_arguments={"impl": "bitImageColumn"})
    printer._raw(b"after\n")
    decoded = decode(printer.output)
    assert decoded.qr_payloads == [URL]  # GS ( L is decoded; ESC * is only skipped
    assert decoded.lines[-1] == "after" and decoded.unknown == []


def test_cut_commands_with_and_without_feed() -> None:
    for command in (b"\x1dV\x00", b"\x1dV1", b"\x1dVB\x00", b"\x1dVA\x05"):
        decoded = decode(b"x\n" + command + b"y\n")
        assert decoded.cut and decoded.lines == ["x", "y"] and decoded.unknown == []


def test_unknown_and_truncated_commands_are_listed_not_raised() -> None:
    decoded = decode(b"a\n\x1b\x07b\n\x1d\xffc\x10\x00")
    assert decoded.lines == ["a", "b", "c"]
    assert decoded.unknown == ["ESC 0x07 at 2", "GS 0xFF at 6", "DLE 0x00 at 9"]
    assert decode(GS_V0 + b"\x02\x00\x10\x00abc").unknown == ["GS v 0 truncated"]
    assert decode(b"\x1d").unknown == ["GS truncated at 0"]


def test_render_text_shows_qr_and_cut_in_place() -> None:
    printer = dummy()
    printer._raw("谢谢惠顾\n".encode("gb18030"))
    printer.qr(URL, native=True)
    printer.cut(feed=False)
    assert render_text(decode(printer.output)) == f"谢谢惠顾\n[QR: {URL}]\n--- cut ---\n"


commands = st.sampled_from(
    [b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\n", GS_V0, b"\x1d(k", b"\x1d(L", b"\x1d8L", b"\x1bd"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(commands, st.binary(max_size=12)), max_size=40))
def test_garbage_never_raises(chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    decoded = decode(data)
    render_text(decoded)
    assert isinstance(decoded.lines, list)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["gb18030", "gbk"]))
def test_random_bytes_never_raise(data: bytes, encoding: str) -> None:
    decode(data, encoding=encoding)
