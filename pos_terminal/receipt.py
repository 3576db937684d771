"""The sale receipt: our own column layout (East Asian widths) and its ESC/POS bytes.

python-escpos supplies the commands; every character of text goes through `TextEncoder`.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

import qrcode
from PIL import Image

if TYPE_CHECKING:
    from escpos.printer import Dummy

from pos_terminal.money import format_receipt_yuan

log = logging.getLogger(__name__)

ENCODINGS = ("gb18030", "gbk")
ESCPOS_PROFILE = "POS-5890"  # capability profile python-escpos builds commands for
FS_CHINESE_MODE = (
    b"\x1c&"  # FS &: double-byte (GB) character mode, on by default on most 58 mm units
)
TEAR_OFF_FEED_LINES = 4  # no cutter: feed the last line past the tear bar
QR_MAX_MODULE_DOTS = 5  # 0.6 mm modules at 203 dpi: easy for scanners, small enough to print fast
QR_BORDER_MODULES = (
    2  # horizontal padding and the blank lines around the code complete the quiet zone
)
_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


@dataclass(frozen=True)
class SaleReceipt:
    """Everything printed on the receipt of an approved sale."""

    merchant_name: str
    store_id: str
    terminal_id: str
    time: datetime
    method_label: str
    amount_fen: int
    out_trade_no: str
    transaction_id: str
    masked_code: str | None  # already masked by the caller: "1345********6789"
    reprint: bool = False

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("receipt time must be timezone-aware")
        if isinstance(self.amount_fen, bool) or self.amount_fen < 0:
            raise ValueError(
                f"receipt amount must be a non-negative number of fen: {self.amount_fen}"
            )


@dataclass(frozen=True)
class PrinterProfile:
    """What the layout needs to know about the printer; the defaults are the POS-5890 class."""

    columns: int = 32  # font A, 12-dot cells on 384 dots
    dots_per_line: int = 384
    native_qr: bool = False  # GS ( k; cheap 58 mm units lack it, so the default is a raster image
    cutter: bool = False
    encoding: str = "gb18030"

    def __post_init__(self) -> None:
        if not 16 <= self.columns <= 96:
            raise ValueError(f"printer columns must be 16..96, not {self.columns}")
        if not 64 <= self.dots_per_line <= 2048:
            raise ValueError(f"printer dots_per_line must be 64..2048, not {self.dots_per_line}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"printer encoding must be one of {', '.join(ENCODINGS)}")


# ---------------------------------------------------------------------------------- widths


def char_width(char: str, *, ambiguous: int = 1) -> int:
    """Columns one character takes: wide/full-width 2, combining 0, ambiguous as given, else 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
        return 0
    east_asian = unicodedata.east_asian_width(char)
    if east_asian in ("W", "F"):
        return 2
    return ambiguous if east_asian == "A" else 1


def display_width(text: str, *, ambiguous: int = 1) -> int:
    """Columns `text` takes on a fixed-pitch device (terminal, receipt printer).

    `ambiguous=2` suits GB printers: '·', '—', '°', 'é', box drawing are double-byte in GBK and
    print with the 24-dot Hanzi font, so they take two columns on paper.
    """
    return sum(char_width(char, ambiguous=ambiguous) for char in text)


_PRINTED = 2  # the receipt counts ambiguous-width characters as the printer prints them


def _width(text: str) -> int:
    return display_width(text, ambiguous=_PRINTED)


def wrap_columns(text: str, columns: int) -> list[str]:
    """Break text into lines of at most `columns` printed columns.

    Breaks at spaces when a word fits on a line of its own, otherwise on the column boundary;
    a double-width character is never split and combining marks stay with their base.
    """
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if token.isspace():
            line += token if line else ""
        elif _width(line + token) <= columns:
            line += token
        elif line and _width(token) <= columns:
            lines.append(line.rstrip())
            line = token
        else:
            for cluster in _clusters(token):
                if _width(line + cluster) > columns:
                    lines.append(line.rstrip())
                    line = ""
                line += cluster
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _clusters(text: str) -> list[str]:
    """Characters with their following zero-width marks attached."""
    clusters: list[str] = []
    for char in text:
        if clusters and char_width(char) == 0:
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _tokens(text: str) -> list[str]:
    """Runs of spaces, runs of printable ASCII (words), and every other character alone."""
    tokens: list[str] = []
    for cluster in _clusters(text):
        kind = _kind(cluster)
        if kind and tokens and _kind(tokens[-1]) == kind:
            tokens[-1] += cluster
        else:
            tokens.append(cluster)
    return tokens


def _kind(token: str) -> str:
    if token.isspace():
        return " "
    return "a" if all("!" <= char <= "~" for char in token) else ""


def _clean(text: str) -> str:
    """What the receipt prints: NFC, the full-width yuan sign, no control characters."""
    text = unicodedata.normalize("NFC", text).replace("\u00a5", "\uffe5")
    return "".join(" " if unicodedata.category(c) in _UNPRINTABLE_CATEGORIES else c for c in text)


# ---------------------------------------------------------------------------------- layout


class Style(Enum):
    NORMAL = "normal"
    TITLE = "title"  # merchant name: bold, double height (width stays one column per cell)
    AMOUNT = "amount"  # bold, double height


@dataclass(frozen=True)
class Row:
    """One printed row: a line of text, or a QR code of `qr` when that is set."""

    text: str
    style: Style = Style.NORMAL
    qr: str | None = None


def _centred(text: str, columns: int, style: Style = Style.NORMAL) -> list[Row]:
    return [
        Row(" " * ((columns - _width(line)) // 2) + line, style)
        for line in wrap_columns(_clean(text), columns)
    ]


def _field(label: str, value: str, columns: int, style: Style = Style.NORMAL) -> list[Row]:
    """`label      value` on one line, value right-aligned; a long value goes below, wrapped."""
    label, value = _clean(label), _clean(value).strip()
    gap = columns - _width(label) - _width(value)
    if gap >= 1:
        return [Row((label + " " * gap + value).rstrip(), style)]
    rows = [Row(line, style) for line in wrap_columns(label, columns)]
    for line in wrap_columns(value, columns):
        rows.append(Row(" " * (columns - _width(line)) + line, style))
    return rows


def layout_rows(receipt: SaleReceipt, profile: PrinterProfile) -> list[Row]:
    """The receipt top to bottom, text rows no wider than `profile.columns`."""
    cols = profile.columns
    rule = Row("-" * cols)
    rows = _centred(receipt.merchant_name, cols, Style.TITLE)
    if receipt.reprint:
        rows += _centred("** 重打印 REPRINT **", cols)
    rows += [
        rule,
        *_field("门店 Store", receipt.store_id, cols),
        *_field("终端 Terminal", receipt.terminal_id, cols),
        *_field("时间 Time", receipt.time.strftime("%Y-%m-%d %H:%M:%S"), cols),
        *_field("支付方式 Method", receipt.method_label, cols),
        rule,
        *_field("金额 Amount", format_receipt_yuan(receipt.amount_fen), cols, Style.AMOUNT),
        rule,
        *_field("商户单号 Order no.", receipt.out_trade_no, cols),
        *_field("交易单号 Txn id", receipt.transaction_id, cols),
    ]
    if receipt.masked_code:
        rows += _field("付款码 Code", receipt.masked_code, cols)
    rows += [rule, Row("", qr=receipt.out_trade_no), *_centred("谢谢惠顾 Thank you", cols)]
    return rows


def layout_sale(receipt: SaleReceipt, profile: PrinterProfile) -> list[str]:
    """The receipt's text lines (no QR), each at most `profile.columns` display columns."""
    return [row.text for row in layout_rows(receipt, profile) if row.qr is None]


# ---------------------------------------------------------------------------------- bytes


class TextEncoder:
    """Unicode to printer bytes in one GB encoding, never through python-escpos's code pages.

    U+00A5 '¥' becomes U+FFE5 '￥' (GBK has only the full-width sign); a character the encoding
    lacks prints as '?' and is logged once per encoder.
    """

    def __init__(self, encoding: str) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"printer encoding must be one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        self._warned: set[str] = set()

    def encode(self, text: str) -> bytes:
        text = text.replace("\u00a5", "\uffe5")
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError:
            return b"".join(self._encode_char(char) for char in text)

    def _encode_char(self, char: str) -> bytes:
        try:
            return char.encode(self.encoding)
        except UnicodeEncodeError:
            if char not in self._warned:
                self._warned.add(char)
                log.warning(
                    "receipt text U+%04X %r is not in %s; printed as '?'",
                    ord(char),
                    char,
                    self.encoding,
                )
            return b"?"


def _escpos_printer(profile: PrinterProfile) -> Dummy:
    """A capturing python-escpos printer whose media width is the profile's dot width."""
    # imported here: python-escpos loads its capability database at import (~0.12 s), which
    # the first receipt may pay on a worker thread rather than every start-up
    from escpos.printer import Dummy

    printer = Dummy(profile=ESCPOS_PROFILE)
    data = printer.profile.profile_data
    media = data["media"]
    width = {**media["width"], "pixels": profile.dots_per_line}
    # an instance attribute: the class-level profile data is shared by every printer object
    printer.profile.profile_data = {**data, "media": {**media, "width": width}}
    return printer


def qr_module_dots(payload: str, dots_per_line: int) -> int:
    """Dots per QR module: as large as QR_MAX_MODULE_DOTS allows while the code fits the paper.

    Raises:
        ValueError: the payload needs more modules than the paper has dots.
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(payload)
    code.make(fit=True)
    module = min(QR_MAX_MODULE_DOTS, dots_per_line // (code.modules_count + 2 * QR_BORDER_MODULES))
    if module < 1:
        raise ValueError(
            f"a QR code of {len(payload)} characters does not fit {dots_per_line} dots"
        )
    return module


def _qr_image(payload: str, module: int) -> Image.Image:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=module,
        border=QR_BORDER_MODULES,
    )
    code.add_data(payload)
    code.make(fit=True)
    image: Image.Image = code.make_image().get_image()
    return image.convert("1")


def _print_qr(printer: Dummy, encoder: TextEncoder, payload: str, profile: PrinterProfile) -> None:
    module = qr_module_dots(payload, profile.dots_per_line)
    printer._raw(encoder.encode("\n"))
    if profile.native_qr:
        from escpos.constants import QR_ECLEVEL_M

        printer.set(align="center")
        printer.qr(payload, ec=QR_ECLEVEL_M, size=module, native=True)
        printer.set(align="left")
    else:
        # not printer.qr(native=False): its own text("\n") goes through python-escpos's
        # code-page magic (ESC t 1). Same raster (GS v 0), padded to the paper width to centre it.
        image = _qr_image(payload, module)
        printer.image(image, impl="bitImageRaster", center=True)
    printer._raw(encoder.encode("\n"))


_STYLES = {
    Style.NORMAL: {"normal_textsize": True, "bold": False},
    Style.TITLE: {"double_height": True, "bold": True},
    Style.AMOUNT: {"double_height": True, "bold": True},
}


def render_escpos(receipt: SaleReceipt, profile: PrinterProfile) -> bytes:
    """The receipt as ESC/POS bytes for `profile`'s printer.

    Raises:
        ValueError: the order number is too long for a QR code that fits the paper.
    """
    printer = _escpos_printer(profile)
    encoder = TextEncoder(profile.encoding)
    printer.hw("INIT")
    printer._raw(FS_CHINESE_MODE)
    style = Style.NORMAL
    for row in layout_rows(receipt, profile):
        if row.qr is not None:
            _print_qr(printer, encoder, row.qr, profile)
            continue
        if row.style is not style:
            printer.set(**_STYLES[row.style])
            style = row.style
        printer._raw(encoder.encode(row.text + "\n"))
    if style is not Style.NORMAL:
        printer.set(**_STYLES[Style.NORMAL])
    if profile.cutter:
        printer.cut(feed=False)  # GS V 66 0: feed to the cutter, then cut
    else:
        printer.print_and_feed(TEAR_OFF_FEED_LINES)
    output: bytes = printer.output
    return output
