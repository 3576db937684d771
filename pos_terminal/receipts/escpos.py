"""Receipts as ESC/POS bytes: python-escpos builds the commands, our TextEncoder every character.

Both copies of a receipt go in one job, separated by a cut (or a tear-off feed without a cutter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import qrcode
from PIL import Image

from pos_terminal.receipts.layout import Style, copies_of, layout_rows
from pos_terminal.receipts.model import BOTH_COPIES, Copy, PrinterProfile, Receipt
from pos_terminal.receipts.text import TextEncoder

if TYPE_CHECKING:
    from escpos.printer import Dummy

ESCPOS_PROFILE = "POS-5890"  # capability profile python-escpos builds commands for
FS_CHINESE_MODE = b"\x1c&"  # FS &: double-byte (GB) character mode, default on most 58 mm units
TEAR_OFF_FEED_LINES = 4  # no cutter: feed the last line past the tear bar
QR_MAX_MODULE_DOTS = 5  # 0.6 mm modules at 203 dpi: easy for scanners, small enough to print fast
QR_BORDER_MODULES = 2  # padding plus the blank lines around the code complete the quiet zone

_STYLES = {
    Style.NORMAL: {"normal_textsize": True, "bold": False},
    Style.TITLE: {"double_height": True, "bold": True},
    Style.AMOUNT: {"double_height": True, "bold": True},
}


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


def _qr_code(payload: str, module: int = 1) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=module, border=0
    )
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_module_dots(payload: str, dots_per_line: int) -> int:
    """Dots per QR module: as large as QR_MAX_MODULE_DOTS allows while the code fits the paper.

    Raises:
        ValueError: the payload needs more modules than the paper has dots.
    """
    modules: int = _qr_code(payload).modules_count + 2 * QR_BORDER_MODULES
    module = min(QR_MAX_MODULE_DOTS, dots_per_line // modules)
    if module < 1:
        raise ValueError(
            f"a QR code of {len(payload)} characters does not fit {dots_per_line} dots"
        )
    return module


def _qr_image(payload: str, module: int) -> Image.Image:
    code = _qr_code(payload, module)
    code.border = QR_BORDER_MODULES
    image: Image.Image = code.make_image().get_image()
    return image.convert("1")


class _Job:
    """One print job being built."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.printer = _escpos_printer(profile)
        self.encoder = TextEncoder(profile.encoding)
        self.style = Style.NORMAL
        self.printer.hw("INIT")
        self.printer._raw(FS_CHINESE_MODE)

    def line(self, text: str, style: Style) -> None:
        if style is not self.style:
            self.printer.set(**_STYLES[style])
            self.style = style
        self.printer._raw(self.encoder.encode(text + "\n"))

    def qr(self, payload: str) -> None:
        profile, printer = self.profile, self.printer
        module = qr_module_dots(payload, profile.dots_per_line)
        printer._raw(b"\n")
        if profile.native_qr:
            from escpos.constants import QR_ECLEVEL_M

            printer.set(align="center")
            printer.qr(payload, ec=QR_ECLEVEL_M, size=module, native=True)
            printer.set(align="left")
        else:
            # not printer.qr(native=False): its own text("\n") goes through python-escpos's
            # code-page magic (ESC t 1). Same raster (GS v 0), padded to the paper to centre it.
            printer.image(_qr_image(payload, module), impl="bitImageRaster", center=True)
        printer._raw(b"\n")

    def end_of_copy(self) -> None:
        if self.style is not Style.NORMAL:
            self.printer.set(**_STYLES[Style.NORMAL])
            self.style = Style.NORMAL
        if self.profile.cutter:
            self.printer.cut(feed=False)  # GS V 66 0: feed to the cutter, then cut
        else:
            self.printer.print_and_feed(TEAR_OFF_FEED_LINES)

    def output(self) -> bytes:
        data: bytes = self.printer.output
        return data


def render_escpos(
    receipt: Receipt, profile: PrinterProfile, copies: tuple[Copy, ...] = BOTH_COPIES
) -> bytes:
    """The receipt as one ESC/POS job: each of `copies` in turn (a settlement prints once).

    Raises:
        ValueError: the order number is too long for a QR code that fits the paper.
    """
    job = _Job(profile)
    for copy in copies_of(receipt, copies):
        for row in layout_rows(receipt, profile, copy):
            if row.qr is not None:
                job.qr(row.qr)
            else:
                job.line(row.text, row.style)
        job.end_of_copy()
    return job.output()
