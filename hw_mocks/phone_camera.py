"""A customer's phone screen as a cheap USB camera sees it: a physical model, drawn at random.

Written from what screens, lenses and sensors do, not from what the decoders expect: the code is
drawn on an emissive screen of RGB sub-pixels behind glass (reflections, glare), held in 3-D
(distance, roll, pitch and yaw: perspective) inside a bezel over a cluttered counter, then
imaged through a soft lens (defocus, hand shake) onto a Bayer sensor (uneven light, vignetting,
shot and read noise, flicker bands), demosaiced, gamma-encoded and sent as MJPEG. The screen's
pixel grid against the sensor's gives moiré by itself.

`draw_scene(rng, symbology)` picks every parameter; `shoot(scene)` renders the BGR frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from hw_mocks.camera import payment_code

Symbology = Literal["qr", "code128"]
Floats = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]

FRAME_SIZE = (640, 480)  # (w, h): what the terminal decodes
FOCAL_PX = 540.0  # a webcam with about 61 degrees of horizontal view at 640 px
SUPERSAMPLE = 2  # the sensor integrates over its pixels: render at twice its resolution
C128_QUIET = 10  # modules of white each side, as phone apps draw it
QR_QUIET = 4


@dataclass(frozen=True)
class Scene:
    """Everything one frame depends on; lengths in camera pixels unless named otherwise."""

    symbology: Symbology
    code: str
    module_px: float  # one module at the code's centre, in frame pixels (less if the phone
    # had to move back for the whole symbol to be in view)
    screen_module_px: float  # the phone draws each module this many screen pixels wide
    screen_pitch_mm: float  # one screen pixel
    qr_error: str  # QR error correction level: L, M, Q or H
    bar_height: float  # Code 128 bar height as a share of the symbol's width
    roll_deg: float  # turned in the screen's plane
    pitch_deg: float  # top edge leaning away
    yaw_deg: float  # side edge leaning away
    offset: tuple[float, float]  # the code's centre from the frame's centre, fraction of size
    subpixel_gap: float  # light in the black-matrix row between pixel rows (0 = dark, 1 = none)
    screen_black: float  # what a black pixel still emits (0-1 of white)
    screen_white: float  # brightness of white, linear (0-1)
    ambient_veil: float  # room light reflected evenly by the glass (linear)
    glare: tuple[float, float, float, float]  # peak, centre x, centre y (fractions), radius (px)
    light_gradient: tuple[float, float]  # illumination falloff across x and y (fractions)
    vignetting: float  # darkening at the corners (fraction)
    defocus_px: float  # radius of the lens's blur disc
    motion: tuple[float, float]  # hand-shake streak: length px, direction deg
    exposure: float  # sensor gain on linear light
    read_noise: float  # grey levels sd at the sensor
    shot_noise: float  # sd in grey levels at full white (scales with sqrt(signal))
    flicker: tuple[float, float]  # screen PWM banding: depth, period in rows
    jpeg_quality: int
    clutter_seed: int
    bezel_mm: float = 4.0
    encoder: Literal["python-barcode", "zxing-cpp"] = "python-barcode"


def draw_scene(rng: np.random.Generator, symbology: Symbology) -> Scene:
    """One random scene: a phone held up by a customer at a counter, as a camera sees it.

    Sizes follow the payment apps: the barcode spans 45-62 mm of the screen, the QR code
    28-45 mm; the phone's distance is drawn so that a barcode module covers 1.5-4 camera
    pixels (1.35-4.4 where the app rounds modules to whole screen pixels; a QR module, 3-4
    times larger, 4-14). The phone is within the camera's
    depth of field (blur disc radius up to 1.2 px) and held about still (a streak up to 2.5 px).
    """
    pitch = 25.4 / float(rng.uniform(300, 460))  # screen pixel pitch, mm
    barcode_module_px = float(np.exp(rng.uniform(math.log(1.5), math.log(4.0))))
    barcode_module_mm = float(rng.uniform(45, 62)) / 154  # 18 digits: 134 modules + quiet zones
    px_per_mm = barcode_module_px / barcode_module_mm
    error = str(rng.choice(["L", "M", "Q", "H"]))
    if symbology == "code128":
        module_mm = barcode_module_mm
    else:
        module_mm = float(rng.uniform(28, 45)) / (29 if error != "H" else 33)
    screen_module = module_mm / pitch
    if rng.random() < 0.5:  # many apps draw whole screen pixels per module, for crisp edges
        screen_module = max(1.0, round(screen_module))
    # most customers hold the phone about level; some turn it anywhere
    roll = float(rng.normal(0, 6) if rng.random() < 0.6 else rng.uniform(-180, 180))
    glare_on = rng.random() < 0.5
    return Scene(
        symbology=symbology,
        code=payment_code(int(rng.integers(1 << 31)), prefix=str(rng.integers(10, 16))),
        module_px=screen_module * pitch * px_per_mm,
        screen_module_px=screen_module,
        screen_pitch_mm=pitch,
        qr_error=error,
        bar_height=float(rng.uniform(0.22, 0.35)),
        roll_deg=roll,
        pitch_deg=float(rng.uniform(-30, 30)),
        yaw_deg=float(rng.uniform(-30, 30)),
        offset=(float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15))),
        subpixel_gap=float(rng.uniform(0.0, 0.8)),
        screen_black=float(rng.uniform(0.0, 0.08)),
        screen_white=float(rng.uniform(0.35, 1.0)),
        ambient_veil=float(rng.uniform(0.0, 0.12)),
        glare=(
            float(rng.uniform(0.1, 0.6)) if glare_on else 0.0,
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(30, 160)),
        ),
        light_gradient=(float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4))),
        vignetting=float(rng.uniform(0.0, 0.4)),
        defocus_px=float(rng.uniform(0.0, 1.2)) if rng.random() < 0.6 else 0.0,
        motion=(
            float(rng.uniform(0.5, 2.5)) if rng.random() < 0.5 else 0.0,
            float(rng.uniform(0, 180)),
        ),
        exposure=float(rng.uniform(0.7, 1.3)),
        read_noise=float(rng.uniform(1.0, 6.0)),
        shot_noise=float(rng.uniform(2.0, 8.0)),
        flicker=(
            float(rng.uniform(0.02, 0.12)) if rng.random() < 0.4 else 0.0,
            float(rng.uniform(8, 40)),
        ),
        jpeg_quality=int(rng.integers(35, 92)),
        clutter_seed=int(rng.integers(1 << 31)),
        bezel_mm=float(rng.uniform(2.0, 8.0)),
        encoder="zxing-cpp" if rng.random() < 0.5 else "python-barcode",
    )


# ---------------------------------------------------------------------------- the phone screen


def _modules(scene: Scene) -> npt.NDArray[np.uint8]:
    """The symbol as a module matrix (1 = dark) with its quiet zone; Code 128 as one row."""
    if scene.symbology == "qr":
        import segno

        matrix = np.array(segno.make_qr(scene.code, error=scene.qr_error).matrix, dtype=np.uint8)
        return np.pad(matrix, QR_QUIET)
    if scene.encoder == "zxing-cpp":
        import zxingcpp

        symbol = zxingcpp.create_barcode(scene.code, zxingcpp.BarcodeFormat.Code128)
        row = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=1, add_quiet_zones=False))
        bars = (row[row.shape[0] // 2] < 128).astype(np.uint8)
    else:
        import barcode

        pattern = "".join(barcode.get("code128", scene.code).build())
        bars = np.array([int(c) for c in pattern], dtype=np.uint8)
    return np.pad(bars, C128_QUIET)[None, :]


def _screen(scene: Scene) -> tuple[Floats, tuple[float, float, float, float]]:
    """The screen's content in linear light (screen pixels, 3 channels) and where the symbol
    sits on it (x0, y0, x1, y1 in screen pixels)."""
    modules = _modules(scene)
    rows, cols = modules.shape
    m = scene.screen_module_px
    width = round(cols * m)
    height = round(rows * m) if scene.symbology == "qr" else round(width * scene.bar_height)
    # the app draws the symbol at its own scale: area resampling, as a phone's compositor does
    symbol = cv2.resize(
        np.where(modules > 0, 0.0, 1.0).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_AREA if m >= 1 else cv2.INTER_LINEAR,
    )
    margin_x, margin_top, margin_bottom = round(width * 0.08), round(m * 14), round(m * 30)
    screen_w, screen_h = width + 2 * margin_x, height + margin_top + margin_bottom
    rng = np.random.default_rng(scene.clutter_seed)
    canvas = np.full((screen_h, screen_w), 255, np.uint8)
    _app_furniture(canvas, rng, (margin_x, margin_top + height, width, m))
    content = canvas.astype(np.float32) / 255
    content[margin_top : margin_top + height, margin_x : margin_x + width] = symbol
    level = scene.screen_black + (1.0 - scene.screen_black) * content
    colour = np.repeat(level[:, :, None], 3, axis=2) * scene.screen_white
    # the app's green header band shows at the top edge
    colour[: max(1, round(m * 4))] *= np.array([0.35, 0.75, 0.25], np.float32)
    return colour.astype(np.float32), (margin_x, margin_top, margin_x + width, margin_top + height)


def _app_furniture(
    canvas: Image, rng: np.random.Generator, below: tuple[int, int, int, float]
) -> None:
    """Masked digits and a hint line under the symbol, as a payment app shows them."""
    x, y, width, m = below
    scale = max(0.3, m / 5)
    digits = f"{rng.integers(1000, 9999)} **** **** {rng.integers(1000, 9999)}"
    cv2.putText(canvas, digits, (x + width // 4, y + round(m * 10)), 0, scale, 60, 1)
    cv2.putText(canvas, "tap to show digits", (x + width // 3, y + round(m * 20)), 0,
                scale * 0.7, 120, 1)  # fmt: skip


def _subpixels(screen: Floats, gap: float) -> Floats:
    """Each screen pixel as 3x3 cells: R, G and B stripes, and a row of black matrix below."""
    mask = np.zeros((3, 3, 3), np.float32)
    for stripe, channel in enumerate((2, 1, 0)):  # BGR order: the red stripe first
        mask[:, stripe, channel] = 1.0
    mask[2] *= gap
    mask /= mask.mean(axis=(0, 1))  # each channel keeps the pixel's light
    big = np.repeat(np.repeat(screen, 3, axis=0), 3, axis=1)
    return (big * np.tile(mask, (screen.shape[0], screen.shape[1], 1))).astype(np.float32)


# ---------------------------------------------------------------------------- pose and scene


def _rotation(roll: float, pitch: float, yaw: float) -> npt.NDArray[np.float64]:
    r, p, y = (math.radians(a) for a in (roll, pitch, yaw))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    return np.asarray(rz @ rx @ ry, np.float64)


def _project(
    scene: Scene, points_mm: npt.NDArray[np.float64], distance_mm: float
) -> npt.NDArray[np.float64]:
    """Screen-plane points (mm, centred on the symbol) to frame pixels."""
    w, h = FRAME_SIZE
    rot = _rotation(scene.roll_deg, scene.pitch_deg, scene.yaw_deg)
    xyz = np.c_[points_mm, np.zeros(len(points_mm))] @ rot.T
    xyz[:, 2] += distance_mm
    centre = np.array([w / 2 + scene.offset[0] * w, h / 2 + scene.offset[1] * h])
    return np.asarray(FOCAL_PX * xyz[:, :2] / xyz[:, 2:3] + centre, dtype=np.float64)


def _distance_mm(scene: Scene, symbol_mm: tuple[float, float]) -> float:
    """How far the phone is: the module's drawn width at the centre, moved back until the
    whole symbol with its quiet zone is in the frame."""
    module_mm = scene.screen_module_px * scene.screen_pitch_mm
    distance = FOCAL_PX * module_mm / scene.module_px
    w, h = FRAME_SIZE
    half_w, half_h = symbol_mm[0] / 2, symbol_mm[1] / 2
    corners = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    for _ in range(40):
        seen = _project(scene, corners, distance)
        if (seen.min(axis=0) >= 4).all() and (seen.max(axis=0) <= (w - 4, h - 4)).all():
            break
        distance *= 1.05
    return distance


def _clutter(rng: np.random.Generator, size: tuple[int, int]) -> Floats:
    """The counter and whatever lies on it: shaded surfaces, edges, printed matter."""
    w, h = size
    low = rng.integers(12, 150, (3, 4, 3)).astype(np.uint8)
    out = np.asarray(cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC), np.uint8)
    for _ in range(int(rng.integers(3, 12))):
        colour = tuple(int(c) for c in rng.integers(0, 230, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            size_xy = (int(rng.integers(20, w // 2)), int(rng.integers(20, h // 2)))
            cv2.rectangle(out, (x, y), (x + size_xy[0], y + size_xy[1]), colour, -1)
        elif kind == 1:
            end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(out, (x, y), end, colour, int(rng.integers(1, 6)))
        else:
            text = "".join(chr(c) for c in rng.integers(65, 91, int(rng.integers(4, 14))))
            cv2.putText(out, text, (x, y), 0, float(rng.uniform(0.5, 2.0)), colour, 2)
    return np.asarray(out, np.float32) / np.float32(255)


# ---------------------------------------------------------------------------- the camera


def _psf(scene: Scene, scale: int) -> Floats:
    """The lens's point spread: defocus disc convolved with a hand-shake streak (at `scale`)."""
    radius = scene.defocus_px * scale
    length, angle = scene.motion[0] * scale, math.radians(scene.motion[1])
    size = 2 * math.ceil(radius + length / 2 + 1) + 1
    c = size // 2
    disc = np.zeros((size, size), np.float32)
    cv2.circle(disc, (c, c), max(0, round(radius)), 1.0, -1)
    if radius < 0.5:
        disc[:] = 0
        disc[c, c] = 1
    streak = np.zeros((size, size), np.float32)
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(streak, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    kernel = np.asarray(cv2.filter2D(disc, -1, streak), np.float32)
    return np.asarray(kernel / kernel.sum(), np.float32)


def shoot(scene: Scene) -> Image:
    """The BGR frame the camera delivers for this scene (FRAME_SIZE)."""
    w, h = FRAME_SIZE
    ss = SUPERSAMPLE
    screen, (x0, y0, x1, y1) = _screen(scene)
    pitch = scene.screen_pitch_mm
    symbol_mm = ((x1 - x0) * pitch, (y1 - y0) * pitch)
    distance = _distance_mm(scene, symbol_mm)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sh, sw = screen.shape[:2]
    bezel = scene.bezel_mm

    def to_mm(x: float, y: float) -> list[float]:
        return [(x - cx) * pitch, (y - cy) * pitch]

    screen_mm = np.array([to_mm(0, 0), to_mm(sw, 0), to_mm(sw, sh), to_mm(0, sh)])
    phone_mm = screen_mm + np.array([[-bezel, -bezel], [bezel, -bezel], [bezel, bezel],
                                     [-bezel, bezel]])  # fmt: skip
    screen_px = _project(scene, screen_mm, distance) * ss
    phone_px = _project(scene, phone_mm, distance) * ss

    # the screen: sub-pixels integrated down near the sensor's sampling, then warped
    cells = _subpixels(screen, scene.subpixel_gap)
    footprint = float(
        np.linalg.norm(screen_px[1] - screen_px[0]) / (3 * sw)
    )  # supersampled frame pixels per sub-pixel cell
    shrink = min(1.0, footprint * 1.5)
    if shrink < 1.0:
        cells = np.asarray(
            cv2.resize(cells, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA),
            np.float32,
        )
    ch, cw = cells.shape[:2]
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    homography = cv2.getPerspectiveTransform(src, screen_px.astype(np.float32))
    size = (w * ss, h * ss)
    glass = np.asarray(
        cv2.warpPerspective(cells, homography, size, flags=cv2.INTER_LINEAR), np.float32
    )
    on_screen = np.zeros((h * ss, w * ss), np.uint8)
    cv2.fillConvexPoly(on_screen, np.round(screen_px).astype(np.int32), 1)
    on_phone = np.zeros_like(on_screen)
    cv2.fillConvexPoly(on_phone, np.round(phone_px).astype(np.int32), 1)

    rng = np.random.default_rng(scene.clutter_seed)
    world = np.asarray(
        cv2.resize(_clutter(rng, (w, h)), size, interpolation=cv2.INTER_LINEAR), np.float32
    )
    bezel_level = np.float32(rng.uniform(0.02, 0.12))
    world[on_phone > 0] = bezel_level
    # the glass reflects the room evenly (veil) and a lamp in one spot (glare)
    yy, xx = np.mgrid[0 : h * ss, 0 : w * ss].astype(np.float32) / ss
    peak, gx, gy, radius = scene.glare
    reflection = scene.ambient_veil + peak * np.exp(
        -((xx - gx * w) ** 2 + (yy - gy * h) ** 2) / (2 * radius**2)
    )
    lit_screen = glass + reflection[:, :, None]
    world = np.where(on_screen[:, :, None] > 0, lit_screen, world).astype(np.float32)

    # illumination falloff and vignetting (the lens's cos^4 and the room's light)
    gxf, gyf = scene.light_gradient
    light = 1 + gxf * (xx / w - 0.5) + gyf * (yy / h - 0.5)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    light *= 1 - scene.vignetting * r2
    world *= light[:, :, None]

    # the lens, then each sensor pixel integrating over its area
    world = np.asarray(cv2.filter2D(world, -1, _psf(scene, ss)), np.float32)
    linear = np.asarray(cv2.resize(world, (w, h), interpolation=cv2.INTER_AREA), np.float32)
    return _sensor(scene, linear)


def _sensor(scene: Scene, linear: Floats) -> Image:
    """Bayer mosaic, noise, flicker, gamma, demosaic and MJPEG: what leaves the webcam."""
    h, w = linear.shape[:2]
    rng = np.random.default_rng(scene.clutter_seed + 1)
    bayer = np.empty((h, w), np.float32)  # BGGR: B at (0,0), G at (0,1) and (1,0), R at (1,1)
    bayer[0::2, 0::2] = linear[0::2, 0::2, 0]
    bayer[0::2, 1::2] = linear[0::2, 1::2, 1]
    bayer[1::2, 0::2] = linear[1::2, 0::2, 1]
    bayer[1::2, 1::2] = linear[1::2, 1::2, 2]
    signal = np.clip(bayer * scene.exposure, 0, 1) * 255
    depth, period = scene.flicker
    if depth:
        rows = np.arange(h, dtype=np.float32)[:, None]
        signal *= 1 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rows / period))
    noise = rng.normal(0, 1, signal.shape).astype(np.float32)
    signal += noise * np.sqrt(scene.read_noise**2 + scene.shot_noise**2 * signal / 255)
    encoded = 255 * (np.clip(signal, 0, 255) / 255) ** (1 / 2.2)
    mosaic = np.clip(encoded + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(mosaic, cv2.COLOR_BayerRG2BGR)  # OpenCV names BGGR by its 2nd row
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid 8-bit image
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)
