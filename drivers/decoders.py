"""Code decoders for camera frames: zxing-cpp and pyzbar behind one small Protocol, always
restricted to QR and Code 128, plus the preprocessing ladder tried when a frame yields nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from pos_terminal.errors import ConfigError, DeviceError

log = logging.getLogger(__name__)

Grey = npt.NDArray[np.uint8]
DecoderName = Literal["zxing", "pyzbar"]
DECODERS: tuple[DecoderName, ...] = ("zxing", "pyzbar")


Symbology = Literal["qr", "code128"]
# Asked for QR, zxing-cpp also returns Micro QR and rMQR (its QR family); neither is ever a
# payment or receipt code, so only these format names count (QRCodeModel2: zxing-cpp 3's name
# for a plain QR when it tells the model apart).
_ZXING_KINDS: dict[str, Symbology] = {"QRCode": "qr", "QRCodeModel2": "qr", "Code128": "code128"}
_ZBAR_KINDS: dict[str, Symbology] = {"QRCODE": "qr", "CODE128": "code128"}


@dataclass(frozen=True)
class Decoded:
    text: str
    symbology: Symbology


def _keep(found: Iterable[tuple[str, Symbology | None, object]]) -> list[Decoded]:
    """The codes of the formats we read; any other symbol a library reports is dropped."""
    kept = []
    for text, kind, fmt in found:
        if kind is None:
            log.debug("ignored a %s symbol: not QR or Code 128", fmt)
        else:
            kept.append(Decoded(text, kind))
    return kept


class CodeDecoder(Protocol):
    name: str

    def decode(self, grey: Grey) -> list[Decoded]:
        """Codes found in a 2-D uint8 image; [] when none (never raises on image content)."""


class ZxingDecoder:
    """zxing-cpp: the default; robust to perspective and blur."""

    name = "zxing"

    def __init__(self, *, binarizer: str = "LocalAverage") -> None:
        import zxingcpp

        self._zx = zxingcpp
        self._formats = [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128]
        self._binarizer = getattr(zxingcpp.Binarizer, binarizer)

    def decode(self, grey: Grey) -> list[Decoded]:
        found = self._zx.read_barcodes(
            grey, formats=self._formats, try_rotate=False, binarizer=self._binarizer
        )
        return _keep((b.text, _ZXING_KINDS.get(b.format.name), b.format) for b in found if b.valid)


class ZbarDecoder:
    """pyzbar over the system libzbar (Debian package libzbar0)."""

    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:  # pyzbar raises ImportError when libzbar cannot be loaded
            raise DeviceError(
                f"decoder 'pyzbar' is unavailable: {exc}. Install the zbar library "
                "(Debian/Raspberry Pi OS: `sudo apt-get install libzbar0`) or set "
                "`decoder: zxing`."
            ) from exc
        self._zbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE, pyzbar.ZBarSymbol.CODE128]

    def decode(self, grey: Grey) -> list[Decoded]:
        found = self._zbar.decode(np.ascontiguousarray(grey), symbols=self._symbols)
        return _keep(
            (r.data.decode("utf-8", "replace"), _ZBAR_KINDS.get(r.type), r.type) for r in found
        )


def make_decoder(name: str) -> CodeDecoder:
    """Raises ConfigError for an unknown name, DeviceError when pyzbar's libzbar is missing."""
    if name == "zxing":
        return ZxingDecoder()
    if name == "pyzbar":
        return ZbarDecoder()
    raise ConfigError(f"unknown decoder {name!r}; valid: {', '.join(DECODERS)}")


# ---------------------------------------------------------------------------- frames


def to_grey(image: npt.NDArray[Any], max_width: int = 0) -> Grey:
    """Any cv2 image (grey, BGR, BGRA, 16-bit) -> 8-bit grey, downscaled to `max_width` if wider.

    Raises ValueError for something that is not a 2-D or 3-D image.
    """
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[:, :, 0]
        else:
            code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
            image = cv2.cvtColor(image[:, :, :4] if channels > 4 else image, code)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"not an image: shape {image.shape}")
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    height, width = image.shape
    if max_width and width > max_width:
        scale = max_width / width
        image = cv2.resize(
            image, (max_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    return np.ascontiguousarray(image)


def _upscale(grey: Grey) -> Grey:
    return cv2.resize(grey, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)


def _sharpen(grey: Grey) -> Grey:
    blurred = cv2.GaussianBlur(grey, (0, 0), 1.5)
    return cv2.addWeighted(grey, 2.0, blurred, -1.0, 0)


def _stretch(grey: Grey) -> Grey:
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(grey)


# Structure tensor over 21x21 windows of the half-size frame: barcodes give strong gradients all
# along one direction. Scores measured on 640x480 frames: noise 4.6k, smooth scene 3.4k, a
# blank phone edge 45k, a dim and noisy Code 128 70k, a clean one 570k.
_GATE_SCORE = 12_000.0


@dataclass(frozen=True)
class Hint:
    """Where the frame looks most like a barcode, and which way its bars run."""

    score: float
    angle_deg: float  # rotating the frame by this makes the strongest gradients horizontal


def barcode_hint(grey: Grey) -> Hint:
    """About 0.5 ms at 640x480. Frames too small to hold a code score 0."""
    if min(grey.shape) < 32:
        return Hint(0.0, 0.0)
    half = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
    small = half.astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = (cv2.blur(a, (21, 21)) for a in (gx * gx, gy * gy, gx * gy))
    energy = jxx + jyy + 1e-3
    coherent = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)  # energy * coherence
    score = coherent * coherent / energy
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    angle = 0.5 * np.degrees(np.arctan2(2 * jxy[y, x], jxx[y, x] - jyy[y, x]))
    return Hint(float(score[y, x]), float(angle))


def _rotate(grey: Grey, angle_deg: float) -> Grey:
    """Rotate about the centre, growing the canvas so no corner is lost."""
    h, w = grey.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(grey, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=255)


Step = tuple[str, Callable[[Grey], Grey], CodeDecoder]


class LadderDecoder:
    """The chosen decoder first. On a miss, and only when the frame looks like it holds a barcode
    (so empty frames stay cheap), retry on the frame levelled to the bars' direction, then with
    contrast stretch, sharpening and 2x upscaling, then with the other decoder.
    """

    def __init__(self, primary: CodeDecoder, others: tuple[CodeDecoder, ...] = ()) -> None:
        self.name = primary.name
        self._primary = primary
        self._steps: list[Step] = [
            ("level", lambda g: g, primary),
            ("level+upscale", _upscale, primary),
            ("level+sharpen", _sharpen, primary),
            ("level+stretch", _stretch, primary),
        ]
        if isinstance(primary, ZxingDecoder):
            self._steps.append(
                ("level+global", lambda g: g, ZxingDecoder(binarizer="GlobalHistogram"))
            )
        for other in others:
            self._steps += [("level", lambda g: g, other), ("level+upscale", _upscale, other)]

    def decode(self, grey: Grey) -> list[Decoded]:
        found = self._primary.decode(grey)
        if found:
            return found
        hint = barcode_hint(grey)
        if hint.score < _GATE_SCORE:
            return []
        level = _rotate(grey, hint.angle_deg) if abs(hint.angle_deg) > 2 else grey
        for label, prepare, decoder in self._steps:
            if level is grey and label == "level" and decoder is self._primary:
                continue  # already tried: the frame needed no levelling
            found = decoder.decode(prepare(level))
            if found:
                log.debug("decoded after %s with %s", label, decoder.name)
                return found
        return []


def build_decoder(name: str, *, ladder: bool = True) -> CodeDecoder:
    """The decoder a camera or the CLI uses: `name` first, then the ladder on a miss.

    The other library joins the ladder only when it is installed. Raises as make_decoder.
    """
    primary = make_decoder(name)
    if not ladder:
        return primary
    others: list[CodeDecoder] = []
    for other in DECODERS:
        if other != name:
            try:
                others.append(make_decoder(other))
            except DeviceError:
                log.debug("decoder %s not available for the preprocessing ladder", other)
    return LadderDecoder(primary, tuple(others))
