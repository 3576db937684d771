"""A picture of a printed receipt: decoded ESC/POS drawn at the printer's dot size, as a PNG.

Text uses a CJK font found on the system (WenQuanYi or Noto CJK); without one, each character
outside ASCII is drawn as an empty box so the picture still shows the layout.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from hw_mocks.escpos_decode import DecodedReceipt, Mark
from pos_terminal.receipts.text import char_width

log = logging.getLogger(__name__)

CELL_DOTS = 12  # font A: 12 x 24 dots, a Hanzi 24 x 24
GLYPH_DOTS = 24
LINE_DOTS = 30  # ESC 2 default line spacing on POS-5890-class printers
CUT_DOTS = 24
MARGIN_DOTS = 8
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs: a known Debian path, else what fontconfig lists."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listed = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.rstrip(": ").strip() for line in listed.splitlines() if line.strip())
    return Path(files[0]) if files else None


class ReceiptPainter:
    """Draws decoded receipts on a strip of paper `dots_per_line` wide (one font, loaded once)."""

    def __init__(
        self,
        dots_per_line: int = 384,
        font_path: Path | None = None,
        *,
        find_font: Callable[[], Path | None] = find_cjk_font,
    ) -> None:
        self.width = dots_per_line
        path = font_path or find_font()
        self.cjk = path is not None
        self._glyphs: dict[tuple[str, bool], Image.Image] = {}
        if path is not None:
            self.font: FontType = ImageFont.truetype(str(path), GLYPH_DOTS - 2)
        else:
            log.warning("no CJK font found (apt-get install fonts-wqy-microhei): boxes drawn")
            self.font = ImageFont.load_default(GLYPH_DOTS - 4)

    def paint(self, decoded: DecodedReceipt) -> Image.Image:
        """The receipt as a grayscale picture, black on white."""
        pieces = [piece for mark in decoded.flow for piece in self._piece(mark)]
        height = sum(piece.height for piece in pieces) + 2 * MARGIN_DOTS
        paper = Image.new("L", (self.width, max(height, 1)), 255)
        y = MARGIN_DOTS
        for piece in pieces:
            paper.paste(piece, (0, y))
            y += piece.height
        return paper

    def save(self, decoded: DecodedReceipt, path: Path) -> None:
        self.paint(decoded).save(path, format="PNG", optimize=False, compress_level=1)

    def _piece(self, mark: Mark) -> list[Image.Image]:
        if mark.kind == "text":
            return [self._text(mark)]
        if mark.kind == "cut":
            return [self._cut()]
        if mark.image is not None:
            return [self._placed(mark.image.convert("L"), mark.align)]
        if mark.kind == "qr":
            return [self._placed(_native_qr(mark.value, mark.module), mark.align)]
        return [self._text(Mark("text", f"[{mark.kind}: {mark.value}]"))]

    def _text(self, mark: Mark) -> Image.Image:
        cells = [(char, char_width(char, ambiguous=2)) for char in mark.value]
        line_width = max(1, sum(width for _, width in cells) * CELL_DOTS)
        line = Image.new("L", (line_width, GLYPH_DOTS), 255)
        x = 0
        for char, width in cells:
            if width and not char.isspace():
                line.paste(self._glyph(char, width, mark.bold), (x, 0))
            x += width * CELL_DOTS
        if mark.width > 1 or mark.height > 1:
            line = line.resize((line_width * mark.width, GLYPH_DOTS * mark.height))
        strip = Image.new("L", (self.width, line.height + LINE_DOTS - GLYPH_DOTS), 255)
        strip.paste(line, (_offset(line.width, self.width, mark.align), 0))
        return strip

    def _glyph(self, char: str, width: int, bold: bool) -> Image.Image:
        """One character cell, drawn once per painter and reused."""
        key = (char, bold)
        cached = self._glyphs.get(key)
        if cached is not None:
            return cached
        cell = Image.new("L", (width * CELL_DOTS, GLYPH_DOTS), 255)
        draw = ImageDraw.Draw(cell)
        if not self.cjk and not " " <= char <= "~":
            draw.rectangle((2, 3, width * CELL_DOTS - 3, GLYPH_DOTS - 3), outline=0)
        else:
            stroke = 1 if bold else 0
            draw.text((0, 1), char, font=self.font, fill=0, stroke_width=stroke, stroke_fill=0)
        self._glyphs[key] = cell
        return cell

    def _placed(self, image: Image.Image, align: int) -> Image.Image:
        if image.width > self.width:
            image = image.crop((0, 0, self.width, image.height))
        strip = Image.new("L", (self.width, image.height), 255)
        strip.paste(image, (_offset(image.width, self.width, align), 0))
        return strip

    def _cut(self) -> Image.Image:
        strip = Image.new("L", (self.width, CUT_DOTS), 255)
        draw = ImageDraw.Draw(strip)
        for x in range(0, self.width, 12):
            draw.line((x, CUT_DOTS // 2, x + 6, CUT_DOTS // 2), fill=0)
        return strip


def _offset(inner: int, outer: int, align: int) -> int:
    if align == 1:
        return max(0, (outer - inner) // 2)
    return max(0, outer - inner) if align == 2 else 0


def _native_qr(payload: str, module: int) -> Image.Image:
    """What the printer draws for GS ( k: the code at `module` dots, with a 4-module quiet zone."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=max(1, module), border=4
    )
    code.add_data(payload)
    code.make(fit=True)
    image: Image.Image = code.make_image().get_image()
    return image.convert("L")


def write_png(decoded: DecodedReceipt, path: Path, dots_per_line: int = 384) -> None:
    """One-off convenience: paint `decoded` and save it as `path`."""
    ReceiptPainter(dots_per_line).save(decoded, path)
