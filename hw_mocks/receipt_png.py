"""A picture of a printed receipt: decoded ESC/POS drawn at the printer's dot size, as a PNG.

As on the printer, a half-width character fills a 12 x 24 dot cell of font A, drawn with a Latin
monospace font (DejaVu Sans Mono, else Pillow's own), and a double-width one (Hanzi, '￥') a
24 x 24 cell, drawn with a CJK font (WenQuanYi or Noto CJK); without a CJK font those cells are
empty boxes so the picture still shows the layout, and `font_advice` says what to install.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
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
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
LATIN_FONT_PACKAGE = "fonts-dejavu-core"
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
LATIN_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
)
ASCII = "".join(chr(code) for code in range(0x21, 0x7F))
HANZI_SAMPLE = "国"  # a full-height ideograph: sizes and centres every CJK glyph
HANZI_INK_DOTS = GLYPH_DOTS - 2  # a 24-dot Hanzi font leaves a dot on every side
LATIN_INK_DOTS = CELL_DOTS - 1  # font A's glyphs: a dot between neighbours, never touching
LATIN_INK_HEIGHT = GLYPH_DOTS - 2  # ascenders to descenders, as tall and narrow as font A
FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont
FindFont = Callable[[], Path | None]


def _font_file(candidates: tuple[str, ...], pattern: str) -> Path | None:
    """The first candidate that exists, else the first file fontconfig lists for `pattern`."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listed = subprocess.run(
            [fc_list, pattern, "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.rstrip(": ").strip() for line in listed.splitlines() if line.strip())
    return Path(files[0]) if files else None


def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs: a known Debian path, else what fontconfig lists."""
    return _font_file(CJK_FONT_CANDIDATES, ":lang=zh")


def find_latin_font() -> Path | None:
    """A monospace font file for font A's half-width cells: a known Debian path, else fontconfig."""
    return _font_file(LATIN_FONT_CANDIDATES, ":spacing=mono:lang=en")


@dataclass(frozen=True)
class _Face:
    """A font sized to its cells: where its baseline sits (dots from the cell top), and how much
    its glyphs are narrowed to fit the cell's width."""

    font: FontType
    baseline: int
    x_scale: float


def _face(font: FontType, sample: str, ink_width: int, ink_height: int) -> _Face:
    """`font` at the largest size whose `sample` ink is at most `ink_height` dots high, centred
    in the cell's height, narrowed so that the widest `sample` glyph is `ink_width` dots wide."""
    _, top, _, bottom = _ink(_sized(font, 100), sample)
    size = max(1, math.floor(100 * ink_height / (bottom - top)))
    while True:
        sized = _sized(font, size)
        _, top, _, bottom = _ink(sized, sample)
        if size == 1 or bottom - top <= ink_height:
            break
        size -= 1
    widest = max(_ink(sized, char)[2] - _ink(sized, char)[0] for char in sample)
    baseline = round((GLYPH_DOTS - (bottom - top)) / 2 - top)
    return _Face(sized, baseline, min(1.0, ink_width / widest))


def _ink(font: FontType, text: str) -> tuple[float, float, float, float]:
    """The ink box of `text` drawn with its baseline at y = 0."""
    return font.getbbox(text, anchor="ls")


def _sized(font: FontType, size: int) -> FontType:
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.font_variant(size=size)
    return font  # a bitmap font has one size


def font_advice(cjk: bool, latin: bool) -> str:
    """What to install when receipt pictures lack a font, in one short line; "" when none lacks."""
    wanted = ((CJK_FONT_PACKAGE, cjk), (LATIN_FONT_PACKAGE, latin))
    missing = [package for package, found in wanted if not found]
    if not missing:
        return ""
    return f"no font, apt-get install {' '.join(missing)}"


class ReceiptPainter:
    """Draws decoded receipts on a strip of paper `dots_per_line` wide (fonts loaded once)."""

    def __init__(
        self,
        dots_per_line: int = 384,
        *,
        find_font: FindFont = find_cjk_font,
        find_latin: FindFont = find_latin_font,
    ) -> None:
        self.width = dots_per_line
        self._glyphs: dict[tuple[str, bool], Image.Image] = {}
        cjk_path, latin_path = find_font(), find_latin()
        self.cjk = cjk_path is not None
        self.font_advice = font_advice(self.cjk, latin_path is not None)
        if self.font_advice:
            log.warning("receipt PNGs: %s", self.font_advice)
        latin_font: FontType = (
            ImageFont.truetype(str(latin_path), GLYPH_DOTS)
            if latin_path is not None
            else ImageFont.load_default(GLYPH_DOTS)
        )
        self._latin = _face(latin_font, ASCII, LATIN_INK_DOTS, LATIN_INK_HEIGHT)
        self._wide: _Face | None = None
        if cjk_path is not None:
            cjk_font = ImageFont.truetype(str(cjk_path), GLYPH_DOTS)
            self._wide = _face(cjk_font, HANZI_SAMPLE, HANZI_INK_DOTS, HANZI_INK_DOTS)

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
            # the printer magnifies each dot; nearest-neighbour does the same
            size = (line_width * mark.width, GLYPH_DOTS * mark.height)
            line = line.resize(size, Image.Resampling.NEAREST)
        strip = Image.new("L", (self.width, line.height + LINE_DOTS - GLYPH_DOTS), 255)
        strip.paste(line, (_offset(line.width, self.width, mark.align), 0))
        return strip

    def _glyph(self, char: str, width: int, bold: bool) -> Image.Image:
        """One character cell, drawn once per painter and reused."""
        key = (char, bold)
        cached = self._glyphs.get(key)
        if cached is None:
            face = self._latin if width == 1 else self._wide
            cached = self._box(width) if face is None else _drawn(char, width, face, bold)
            self._glyphs[key] = cached
        return cached

    @staticmethod
    def _box(width: int) -> Image.Image:
        cell = Image.new("L", (width * CELL_DOTS, GLYPH_DOTS), 255)
        ImageDraw.Draw(cell).rectangle((2, 3, width * CELL_DOTS - 3, GLYPH_DOTS - 3), outline=0)
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


def _drawn(char: str, width: int, face: _Face, bold: bool) -> Image.Image:
    """`char` centred in a cell `width` columns wide, narrowed as its face says, and further when
    its ink would leave the cell: never clipped. Bold prints each dot twice, one dot apart, as
    emphasised mode does."""
    cell_dots = width * CELL_DOTS
    spread = 1 if bold else 0
    left, _, right, _ = _ink(face.font, char)
    span = cell_dots / face.x_scale  # the glyph's own dots that narrow onto the cell
    x = (span - face.font.getlength(char)) / 2
    overflow = max(0.0, -(x + left), x + right + spread - span)
    span, x = span + 2 * overflow, x + overflow
    # Pillow draws text at whole dots: draw at a whole origin, then take the span around it
    origin = math.ceil(x) + 1
    start = origin - x
    glyph = Image.new("L", (math.ceil(start + span) + 1, GLYPH_DOTS), 255)
    draw = ImageDraw.Draw(glyph)
    for dx in range(spread + 1):
        draw.text((origin + dx, face.baseline), char, font=face.font, fill=0, anchor="ls")
    box = (start, 0.0, start + span, float(GLYPH_DOTS))
    return glyph.resize((cell_dots, GLYPH_DOTS), Image.Resampling.LANCZOS, box=box)


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
