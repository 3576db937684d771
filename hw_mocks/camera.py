"""Mock camera: plays image files or generated frames (payment codes on a phone, distorted the
way a real camera sees them), as a FrameSource for drivers/camera.py's CameraScanner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from pos_terminal.errors import DeviceError

Image = npt.NDArray[np.uint8]
Symbology = Literal["qr", "code128"]

# ---------------------------------------------------------------------------- rendering


def render_qr(text: str, module_px: int) -> Image:
    """A QR code, black on white with its 4-module quiet zone, `module_px` pixels per module."""
    import segno

    matrix = np.array(segno.make_qr(text, error="m").matrix, dtype=np.uint8)
    modules = np.pad(matrix, 4)
    return _pixels(modules, module_px, module_px)


def render_micro_qr(text: str, module_px: int) -> Image:
    """A Micro QR symbol (ISO 18004) with its 2-module quiet zone: not a payment code, but
    zxing-cpp reports it when asked for QR codes."""
    import segno

    matrix = np.array(segno.make_micro(text).matrix, dtype=np.uint8)
    return _pixels(np.pad(matrix, 2), module_px, module_px)


def render_code128(text: str, module_px: int, height_px: int = 0) -> Image:
    """A Code 128 symbol with a 10-module quiet zone; height defaults to 15% of its width."""
    import barcode

    pattern = "".join(barcode.get("code128", text).build())
    bars = np.array([int(c) for c in pattern], dtype=np.uint8)
    row = _pixels(np.pad(bars, 10)[None, :], module_px, 1)
    height = height_px or max(8, row.shape[1] * 15 // 100)
    return np.repeat(row, height, axis=0)


def _pixels(modules: npt.NDArray[np.uint8], sx: int, sy: int) -> Image:
    image = np.where(modules > 0, 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(image, sy, axis=0), sx, axis=1)


@dataclass(frozen=True)
class Distortion:
    """How the camera sees the phone: degrees, blur sigma in pixels, noise sd in grey levels."""

    rotate: float = 0.0
    tilt: float = 0.0  # perspective: the phone leaning away, as a fraction of its width (0-0.3)
    blur: float = 0.0
    noise: float = 0.0
    contrast: float = 1.0  # 1 = black on white; 0.3 = dim screen
    glare: float = 0.0  # peak brightness added by a reflection (0-255)


def frame(
    symbol: Image,
    distortion: Distortion = Distortion(),
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Image:
    """Place a rendered symbol on a phone screen in a `size` (w, h) grey frame, then distort it."""
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = np.full((height, width), 70, np.uint8)  # the counter behind the phone
    sh, sw = symbol.shape
    margin = 24
    screen = np.full((sh + 2 * margin, sw + 2 * margin), 255, np.uint8)
    screen[margin : margin + sh, margin : margin + sw] = symbol
    h, w = screen.shape
    d = distortion
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    lean = d.tilt * w
    dst = np.array([[lean, 0], [w - lean, 0], [w, h], [0, h]], np.float32)
    centre = np.array([w / 2, h / 2], np.float32)
    angle = np.deg2rad(d.rotate)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    dst = np.asarray((dst - centre) @ rot.T + np.array([width / 2, height / 2]), np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    mask = cv2.warpPerspective(np.full_like(screen, 255), matrix, (width, height))
    warped = cv2.warpPerspective(screen, matrix, (width, height), flags=cv2.INTER_AREA)
    out = np.where(mask > 0, warped, canvas).astype(np.float32)
    if d.blur:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), d.blur), np.float32)
    out = 128 + (out - 128) * d.contrast
    if d.glare:
        yy, xx = np.mgrid[0:height, 0:width]
        cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
        out += d.glare * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.15 * width) ** 2))
    if d.noise:
        out += rng.normal(0, d.noise, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def payment_code(seed: int, prefix: str = "13") -> str:
    """An 18-digit WeChat-style payment code."""
    rng = np.random.default_rng(seed)
    return prefix + "".join(str(d) for d in rng.integers(0, 10, 16))


def empty_frame(kind: Literal["noise", "scene", "black"], seed: int = 0) -> Image:
    """A frame with no code: sensor noise, a smooth scene, or a covered lens."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (480, 640), dtype=np.uint8)
    if kind == "black":
        return np.zeros((480, 640), np.uint8)
    small = rng.integers(0, 256, (6, 8)).astype(np.uint8)
    smooth = cv2.resize(small, (640, 480), interpolation=cv2.INTER_CUBIC)
    return np.asarray(cv2.GaussianBlur(smooth, (0, 0), 8), np.uint8)


# ---------------------------------------------------------------------------- the camera


class MockCamera:
    """A FrameSource that plays frames in order (optionally looping), then None (no frame).

    Blocking like a real capture: `read` waits `frame_interval_s` per frame.
    """

    def __init__(
        self, frames: Iterable[Image], *, loop: bool = False, frame_interval_s: float = 0.0
    ) -> None:
        self._frames: Sequence[Image] = list(frames)
        self._loop = loop
        self._interval = frame_interval_s
        self._index = 0
        self._opened = False
        self._stop = threading.Event()
        self.reads = 0

    @classmethod
    def from_files(cls, paths: Iterable[Path], **kw: float | bool) -> MockCamera:
        """Raises DeviceError naming a file that cannot be read as an image."""
        frames = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DeviceError(f"mock camera: cannot read image {path}")
            frames.append(image)
        return cls(frames, **kw)  # type: ignore[arg-type]

    def open(self) -> None:
        self._opened = True
        self._stop.clear()

    def read(self) -> Image | None:
        if not self._opened:
            raise DeviceError("mock camera: read before open")
        if self._interval:
            self._stop.wait(self._interval)
        if self._index >= len(self._frames):
            if not self._loop or not self._frames:
                self._stop.wait(0.01)
                return None
            self._index = 0
        image = self._frames[self._index]
        self._index += 1
        self.reads += 1
        return image

    def close(self) -> None:
        self._opened = False
        self._stop.set()
