"""Camera decoders on generated frames: distortions, garbage, and the pyzbar/libzbar message."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from drivers.decoders import (
    LadderDecoder,
    ZxingDecoder,
    barcode_hint,
    build_decoder,
    make_decoder,
    to_grey,
)
from hw_mocks.camera import (
    Distortion,
    empty_frame,
    frame,
    payment_code,
    render_code128,
    render_micro_qr,
    render_qr,
)
from pos_terminal.errors import ConfigError, DeviceError


def _zbar_available() -> bool:
    if importlib.util.find_spec("pyzbar") is None:
        return False
    try:
        make_decoder("pyzbar")
    except DeviceError:
        return False
    return True


ZBAR = _zbar_available()
needs_zbar = pytest.mark.skipif(not ZBAR, reason="pyzbar needs the system zbar library (libzbar0)")
DECODERS = ["zxing", pytest.param("pyzbar", marks=needs_zbar)]

DISTORTIONS = {
    "plain": Distortion(),
    "rotated": Distortion(rotate=25),
    "perspective": Distortion(tilt=0.12, rotate=5),
    "blurred": Distortion(blur=1.2),
    "noisy": Distortion(noise=12),
    "low contrast": Distortion(contrast=0.35),
    "glare": Distortion(glare=120),
}


@pytest.mark.parametrize("name", DISTORTIONS)
def test_a_qr_payment_code_decodes_through_each_distortion(name: str) -> None:
    code = payment_code(1)
    image = frame(render_qr(code, 4), DISTORTIONS[name], seed=3)
    assert [d.text for d in build_decoder("zxing").decode(image)] == [code]


@pytest.mark.parametrize("name", DISTORTIONS)
def test_a_code128_payment_code_decodes_through_each_distortion(name: str) -> None:
    code = payment_code(2)
    distortion = DISTORTIONS[name]
    if name == "rotated":
        distortion = Distortion(rotate=15)
    image = frame(render_code128(code, 3), distortion, seed=4)
    found = build_decoder("zxing").decode(image)
    assert [(d.text, d.symbology) for d in found] == [(code, "code128")]


def test_levelling_reads_a_code128_the_plain_decoder_misses() -> None:
    code = payment_code(3)
    image = frame(render_code128(code, 3), Distortion(rotate=20), seed=5)
    assert ZxingDecoder().decode(image) == []
    assert [d.text for d in LadderDecoder(ZxingDecoder()).decode(image)] == [code]


@pytest.mark.parametrize("decoder", DECODERS)
def test_each_decoder_reads_a_plain_qr_and_code128(decoder: str) -> None:
    dec = make_decoder(decoder)
    code = payment_code(4)
    assert [d.symbology for d in dec.decode(frame(render_qr(code, 4)))] == ["qr"]
    assert [d.text for d in dec.decode(frame(render_code128(code, 3)))] == [code]


def test_other_symbologies_are_not_decoded() -> None:
    import zxingcpp

    ean = zxingcpp.write_barcode_to_image(zxingcpp.create_barcode("4006381333931", zxingcpp.EAN13))
    grey = np.pad(np.asarray(ean, dtype=np.uint8), 40, constant_values=255)
    assert build_decoder("zxing").decode(grey) == []


def side_by_side(*symbols: np.ndarray, gap_px: int = 40) -> np.ndarray:
    """Symbols in one row on white, top-aligned: two codes in view at once."""
    height = max(s.shape[0] for s in symbols)
    white = np.full((height, gap_px), 255, np.uint8)
    row: list[np.ndarray] = []
    for symbol in symbols:
        padded = np.pad(symbol, ((0, height - symbol.shape[0]), (0, 0)), constant_values=255)
        row += [padded, white]
    return np.hstack(row[:-1])


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_micro_qr_in_view_is_ignored_not_a_crash(decoder: str) -> None:
    image = frame(render_micro_qr("12345", 8))
    assert build_decoder(decoder).decode(image) == []


def test_a_micro_qr_beside_a_payment_code_leaves_only_the_payment_code() -> None:
    code = payment_code(7)
    image = frame(side_by_side(render_micro_qr("12345", 6), render_qr(code, 4)), size=(800, 480))
    assert [(d.text, d.symbology) for d in build_decoder("zxing").decode(image)] == [(code, "qr")]


def test_an_rmqr_in_view_is_ignored_not_a_crash() -> None:
    import zxingcpp

    rmqr = zxingcpp.create_barcode("12345", zxingcpp.BarcodeFormat.RMQRCode)
    grey = np.asarray(zxingcpp.write_barcode_to_image(rmqr, scale=6), dtype=np.uint8)
    assert build_decoder("zxing").decode(np.pad(grey, 40, constant_values=255)) == []


@pytest.mark.parametrize(
    "garbage",
    [
        empty_frame("noise"),
        empty_frame("scene"),
        empty_frame("black"),
        np.full((480, 640), 255, np.uint8),
        np.zeros((1, 1), np.uint8),
        np.zeros((3, 5000), np.uint8),
        np.random.default_rng(0).integers(0, 2, (480, 640), dtype=np.uint8) * 255,
    ],
    ids=["noise", "scene", "black", "white", "1px", "sliver", "salt-pepper"],
)
def test_garbage_frames_decode_to_nothing_without_crashing(garbage: np.ndarray) -> None:
    assert build_decoder("zxing").decode(to_grey(garbage, 640)) == []


def test_empty_frames_do_not_trigger_the_preprocessing_ladder() -> None:
    for kind in ("noise", "scene", "black"):
        assert barcode_hint(empty_frame(kind)).score < 12_000  # the ladder's gate


@pytest.mark.parametrize(
    "image",
    [np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 4), np.uint8),
     np.zeros((480, 640), np.uint16), np.zeros((480, 640, 1), np.uint8)],
    ids=["bgr", "bgra", "16-bit", "one-channel"],
)  # fmt: skip
def test_any_camera_image_becomes_8_bit_grey(image: np.ndarray) -> None:
    grey = to_grey(image)
    assert grey.dtype == np.uint8 and grey.shape == (480, 640)


def test_wide_frames_are_downscaled_for_decoding() -> None:
    assert to_grey(np.zeros((1080, 1920), np.uint8), 640).shape == (360, 640)


def test_something_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(ValueError, match="not an image"):
        to_grey(np.zeros((0, 10), np.uint8))


def test_an_unknown_decoder_is_a_config_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="zxing, pyzbar"):
        make_decoder("opencv")


@pytest.mark.skipif(ZBAR, reason="libzbar is installed here")
def test_pyzbar_without_libzbar_says_which_package_to_install() -> None:
    with pytest.raises(DeviceError, match="apt-get install libzbar0"):
        make_decoder("pyzbar")
