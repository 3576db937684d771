"""Our ESC/POS decoder: printer bytes back to text lines, QR payloads, images and the cut.

What we emit plus common printer commands; garbage never raises, it is listed in `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import zxingcpp
from PIL import Image, ImageOps

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT, FF = 0x0A, 0x0D, 0x09, 0x0C

# Commands with a fixed number of parameter bytes: second byte -> parameter count.
_ESC_FIXED = {
    0x40: 0,  # @ initialise
    0x61: 1,  # a justification
    0x45: 1,  # E bold
    0x47: 1,  # G double strike
    0x2D: 1,  # - underline
    0x21: 1,  # ! print mode
    0x4D: 1,  # M font
    0x74: 1,  # t code table
    0x52: 1,  # R international set
    0x32: 0,  # 2 default line spacing
    0x33: 1,  # 3 line spacing
    0x20: 1,  # SP right-side character spacing
    0x56: 1,  # V 90° rotation
    0x7B: 1,  # { upside down
    0x72: 1,  # r colour
    0x25: 1,  # % user-defined set
    0x3D: 1,  # = peripheral device
    0x55: 1,  # U unidirectional
    0x4A: 1,  # J print and feed n dots
    0x64: 1,  # d print and feed n lines
    0x24: 2,  # $ absolute position
    0x5C: 2,  # \ relative position
    0x70: 3,  # p cash drawer pulse
    0x69: 0,  # i partial cut (old)
    0x6D: 0,  # m partial cut (old)
}
_GS_FIXED = {
    0x21: 1,  # ! character size
    0x42: 1,  # B reverse
    0x48: 1,  # H HRI position
    0x66: 1,  # f HRI font
    0x68: 1,  # h barcode height
    0x77: 1,  # w barcode width
    0x61: 1,  # a automatic status back
    0x72: 1,  # r transmit status
    0x49: 1,  # I printer id
    0x62: 1,  # b smoothing
    0x2F: 1,  # / print downloaded image
    0x4C: 2,  # L left margin
    0x57: 2,  # W print area width
    0x24: 2,  # $ absolute vertical position
    0x50: 2,  # P motion units
}
_FS_FIXED = {
    0x26: 0,  # & Chinese (double-byte) mode on
    0x2E: 0,  # . Chinese mode off
    0x21: 1,  # ! Chinese print mode
    0x2D: 1,  # - Chinese underline
    0x57: 1,  # W Chinese quadruple size
    0x43: 1,  # C code system
    0x53: 2,  # S Chinese spacing
    0x70: 2,  # p print NV image
}
_DLE_FIXED = {0x04: 1, 0x05: 1, 0x14: 3}  # EOT status, ENQ, DC4 real-time pulse
_CUT_WITH_FEED = frozenset({65, 66, 97, 98, 103, 104})  # GS V m n
_QR = 49  # GS ( k cn for QR code
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


@dataclass(frozen=True)
class Mark:
    """One item of the paper in order: a text line, a QR code, another image, a barcode, the cut."""

    kind: str  # "text" | "qr" | "image" | "barcode" | "cut"
    value: str = ""
    height: int = 1  # character magnification in force for a text line (1..8)
    width: int = 1
    bold: bool = False
    align: int = 0  # ESC a: 0 left, 1 centre, 2 right (text, native QR)
    module: int = 0  # native QR: dots per module (GS ( k fn 67); 0 for a raster code
    image: Image.Image | None = field(default=None, compare=False)  # the raster, if printed so


@dataclass(frozen=True)
class DecodedReceipt:
    """What came out of the printer. Alignment and character size are not applied to `lines`."""

    lines: list[str]
    qr_payloads: list[str]
    images: list[Image.Image]
    cut: bool
    unknown: list[str]
    flow: list[Mark] = field(default_factory=list)


class _Decoder:
    def __init__(self, data: bytes, encoding: str) -> None:
        self.data, self.encoding = data, encoding
        self.pos = 0
        self.text = bytearray()  # undecoded text of the current line
        self.line_open = False
        self.lines: list[str] = []
        self.qr_payloads: list[str] = []
        self.images: list[Image.Image] = []
        self.unknown: list[str] = []
        self.flow: list[Mark] = []
        self.cut = False
        self.qr_store = b""  # GS ( k fn 80 data waiting for fn 81
        self.graphic: Image.Image | None = None  # GS ( L fn 112 image waiting for fn 50
        self.qr_module = 3  # GS ( k fn 67; 3 is the usual power-on default
        self.print_mode = 0  # ESC ! bits: 3 bold, 4 double height, 5 double width
        self.size = 0  # GS ! n: high nibble width - 1, low nibble height - 1
        self.emphasis = False  # ESC E
        self.align = 0

    # ---------------------------------------------------------------- output

    def flush(self) -> None:
        """Print the line buffer (LF and the print-and-feed commands)."""
        line = self.text.decode(self.encoding, errors="replace")
        self.text.clear()
        self.line_open = False
        self.lines.append(line)
        height = max(self.size % 16 + 1, 2 if self.print_mode & 0x10 else 1)
        width = max(self.size // 16 + 1, 2 if self.print_mode & 0x20 else 1)
        bold = self.emphasis or bool(self.print_mode & 0x08)
        self.flow.append(Mark("text", line, height, width, bold, self.align))

    def flush_if_open(self) -> None:
        if self.line_open:
            self.flush()

    def add_qr(self, payload: str, image: Image.Image | None = None) -> None:
        self.qr_payloads.append(payload)
        module = 0 if image is not None else self.qr_module
        self.flow.append(Mark("qr", payload, align=self.align, module=module, image=image))

    def add_image(self, image: Image.Image) -> None:
        self.flush_if_open()
        self.images.append(image)
        payloads = _read_qr(image)
        for index, payload in enumerate(payloads):
            self.add_qr(payload, image if index == 0 else None)
        if not payloads:
            size = f"{image.width}x{image.height}"
            self.flow.append(Mark("image", size, align=self.align, image=image))

    # ---------------------------------------------------------------- tokens

    def take(self, count: int) -> bytes | None:
        """The next `count` bytes, or None (and the rest skipped) when the data ends first."""
        if self.pos + count > len(self.data):
            self.pos = len(self.data)
            return None
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def run(self) -> DecodedReceipt:
        while self.pos < len(self.data):
            byte = self.data[self.pos]
            self.pos += 1
            if byte == ESC:
                self.command("ESC", _ESC_FIXED, self.esc)
            elif byte == GS:
                self.command("GS", _GS_FIXED, self.gs)
            elif byte == FS:
                self.command("FS", _FS_FIXED, self.fs)
            elif byte == DLE:
                self.command("DLE", _DLE_FIXED, None)
            elif byte in (LF, FF):
                self.flush()
            elif byte == HT:
                self.text += b" "
                self.line_open = True
            elif byte == CR:
                pass  # auto line feed is off by default: CR alone prints nothing
            elif byte < 0x20 or byte == 0x7F:
                self.unknown.append(f"control 0x{byte:02X} at {self.pos - 1}")
            else:
                self.text.append(byte)
                self.line_open = True
        self.flush_if_open()
        return DecodedReceipt(
            self.lines, self.qr_payloads, self.images, self.cut, self.unknown, self.flow
        )

    def command(
        self, prefix: str, fixed: dict[int, int], variable: Callable[[int], bool] | None
    ) -> None:
        """One command after its prefix byte; `variable` handles the variable-length ones."""
        start = self.pos - 1
        head = self.take(1)
        if head is None:
            self.unknown.append(f"{prefix} truncated at {start}")
            return
        code = head[0]
        if code in fixed:
            params = self.take(fixed[code])
            if params is None:
                self.unknown.append(f"{prefix} {_name(code)} truncated at {start}")
            else:
                self.fixed(prefix, code, params)
        elif variable is not None and variable(code):
            return
        else:
            self.unknown.append(f"{prefix} {_name(code)} at {start}")

    def fixed(self, prefix: str, code: int, params: bytes) -> None:
        if prefix == "GS" and code == 0x21:
            self.size = params[0] & 0x77
        if prefix != "ESC":
            return
        if code == 0x40:
            self.text.clear()
            self.line_open = False
            self.print_mode = self.size = self.align = 0
            self.emphasis = False
        elif code == 0x21:
            self.print_mode = params[0]
        elif code == 0x45:
            self.emphasis = bool(params[0] & 1)
        elif code == 0x61:
            self.align = params[0] % 48 if params[0] % 48 <= 2 else 0
        elif code == 0x64:  # ESC d n: print the buffer, then n lines in all
            for _ in range(params[0]):
                self.flush()
        elif code == 0x4A:
            self.flush_if_open()
        elif code in (0x69, 0x6D):
            self.mark_cut()

    def mark_cut(self) -> None:
        self.flush_if_open()
        self.cut = True
        self.flow.append(Mark("cut"))

    def esc(self, code: int) -> bool:
        if code == 0x2A:  # ESC * m nL nH d: column image, 1 or 3 bytes per column
            head = self.take(3)
            if head is not None:
                per_column = 3 if head[0] in (32, 33) else 1
                self.take(per_column * (head[1] + head[2] * 256))
            return head is not None or self.truncated("ESC *")
        if code == 0x44:  # ESC D n1 .. nk NUL: tab positions
            end = self.data.find(b"\x00", self.pos)
            self.pos = len(self.data) if end < 0 else end + 1
            return True
        if code == 0x63:  # ESC c 3/4/5 n: paper sensors and panel buttons
            return self.take(2) is not None or self.truncated("ESC c")
        return False

    def fs(self, code: int) -> bool:
        if code == 0x32:  # FS 2 c1 c2 d1..d72: define a user Chinese character
            return self.take(74) is not None or self.truncated("FS 2")
        return False

    def gs(self, code: int) -> bool:
        if code == 0x56:  # GS V m [n]
            mode = self.take(1)
            if mode is None:
                return self.truncated("GS V")
            if mode[0] in _CUT_WITH_FEED and self.take(1) is None:
                return self.truncated("GS V")
            self.mark_cut()
            return True
        if code == 0x76:
            return self.raster()
        if code == 0x28:  # GS ( fn pL pH p1..pk
            head = self.take(3)
            body = None if head is None else self.take(head[1] + head[2] * 256)
            if head is None or body is None:
                return self.truncated("GS (")
            if head[0] == 0x6B:
                self.two_d_code(body)
            elif head[0] == 0x4C:
                self.graphics(body)
            return True
        if code == 0x38:  # GS 8 L p1 p2 p3 p4 m fn ...: graphics with a 4-byte length
            head = self.take(5)
            size = 0 if head is None else int.from_bytes(head[1:5], "little")
            body = None if head is None else self.take(size)
            if head is None or body is None:
                return self.truncated("GS 8")
            if head[0] == 0x4C:
                self.graphics(body)
            return True
        if code == 0x6B:
            return self.barcode()
        if code == 0x2A:  # GS * x y d: define a downloaded image of x*8 by y*8 dots
            head = self.take(2)
            body = None if head is None else self.take(head[0] * head[1] * 8)
            return body is not None or self.truncated("GS *")
        return False

    def truncated(self, what: str) -> bool:
        self.unknown.append(f"{what} truncated")
        return True

    def raster(self) -> bool:
        """GS v 0 m xL xH yL yH d: raster image, xL+xH*256 bytes by yL+yH*256 rows."""
        head = self.take(6)
        if head is None:
            return self.truncated("GS v")
        if head[0] != 0x30:
            self.unknown.append(f"GS v {_name(head[0])} (not a raster image)")
            return True
        width_bytes = head[2] + head[3] * 256
        height = head[4] + head[5] * 256
        body = self.take(width_bytes * height)
        if body is None:
            return self.truncated("GS v 0")
        if width_bytes and height:
            self.add_image(_bitmap(body, width_bytes * 8, height))
        return True

    def graphics(self, body: bytes) -> None:
        """GS ( L / GS 8 L: fn 112 stores a raster (a bx by c xL xH yL yH d), fn 50 prints it."""
        if len(body) < 2:
            return
        fn = body[1]
        if fn == 112 and len(body) >= 10:
            width = body[6] + body[7] * 256
            height = body[8] + body[9] * 256
            raster = body[10:]
            if width and height and len(raster) >= (width + 7) // 8 * height:
                self.graphic = _bitmap(raster, (width + 7) // 8 * 8, height)
        elif fn in (50, 2) and self.graphic is not None:
            self.add_image(self.graphic)
            self.graphic = None

    def two_d_code(self, body: bytes) -> None:
        """GS ( k cn fn ...: for QR (cn 49), fn 80 stores the data after m, fn 81 prints it."""
        if len(body) < 2 or body[0] != _QR:
            return
        if body[1] == 80 and len(body) >= 3:
            self.qr_store = body[3:]
        elif body[1] == 67 and len(body) >= 3:
            self.qr_module = max(1, min(16, body[2]))
        elif body[1] == 81 and self.qr_store:
            self.flush_if_open()
            self.add_qr(self.qr_store.decode("utf-8", errors="replace"))
            self.qr_store = b""

    def barcode(self) -> bool:
        """GS k m d1..dk NUL (m 0..6) or GS k m n d1..dn (m 65..79)."""
        kind = self.take(1)
        if kind is None:
            return self.truncated("GS k")
        if kind[0] <= 6:
            end = self.data.find(b"\x00", self.pos)
            data = self.data[self.pos : len(self.data) if end < 0 else end]
            self.pos = len(self.data) if end < 0 else end + 1
        else:
            count = self.take(1)
            data = b"" if count is None else self.take(count[0]) or b""
        self.flush_if_open()
        self.flow.append(Mark("barcode", data.decode("ascii", errors="replace")))
        return True


def _name(code: int) -> str:
    return chr(code) if 0x21 <= code <= 0x7E else f"0x{code:02X}"


def _bitmap(raster: bytes, width: int, height: int) -> Image.Image:
    """Packed rows, most significant bit first, 1 = black dot -> a PIL 1-bit image."""
    size = width // 8 * height
    return Image.frombytes("1", (width, height), bytes(raster[:size]), "raw", "1;I")


def _read_qr(image: Image.Image) -> list[str]:
    """QR payloads zxing-cpp finds in a printed image (white margin added for the quiet zone)."""
    framed = ImageOps.expand(image.convert("L"), border=32, fill=255)
    try:
        found = zxingcpp.read_barcodes(framed, formats=QR_ONLY)
    except (ValueError, RuntimeError):
        return []
    return [result.text for result in found if result.valid]


def decode(data: bytes, *, encoding: str = "gb18030") -> DecodedReceipt:
    """Decode printer bytes; never raises for malformed input."""
    return _Decoder(bytes(data), encoding).run()


def render_text(decoded: DecodedReceipt) -> str:
    """A readable rendering: the lines, `[QR: payload]` where a code sits, `--- cut ---`."""
    out: list[str] = []
    for mark in decoded.flow:
        if mark.kind == "text":
            out.append(mark.value)
        elif mark.kind == "qr":
            out.append(f"[QR: {mark.value}]")
        elif mark.kind == "image":
            out.append(f"[image {mark.value}]")
        elif mark.kind == "barcode":
            out.append(f"[barcode: {mark.value}]")
        else:
            out.append("--- cut ---")
    return "\n".join(out) + "\n"
