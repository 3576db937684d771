"""Payment codes on phone screens as a cheap camera sees them (hw_mocks/phone_camera.py): the
model's geometry, and the decode ladder on a small fixed sample of the benchmark's tuning set
(the campaign itself is `python -m tests.benchmarks.bench_scanning`, outside `make test`)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.decoders import Decoded, LadderDecoder, ZxingDecoder, build_decoder, to_grey
from hw_mocks.phone_camera import FRAME_SIZE, Scene, Symbology, draw_scene, shoot
from tests.benchmarks.bench_scanning import sample, samples


def level_scene(symbology: Symbology, module_px: float) -> Scene:
    """A clean, level, sharp phone: every nuisance of the model turned off."""
    scene = draw_scene(np.random.default_rng(5), symbology)
    return replace(
        scene, module_px=module_px, roll_deg=0.0, pitch_deg=0.0, yaw_deg=0.0, offset=(0.0, 0.0),
        glare=(0.0, 0.5, 0.5, 50.0), defocus_px=0.0, motion=(0.0, 0.0), flicker=(0.0, 20.0),
        screen_white=1.0, exposure=1.0, ambient_veil=0.0, jpeg_quality=95,
    )  # fmt: skip


def test_a_frame_is_a_640x480_colour_image_as_a_webcam_sends() -> None:
    image = shoot(draw_scene(np.random.default_rng(1), "code128"))
    assert image.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3) and image.dtype == np.uint8


def test_the_same_scene_gives_the_same_frame() -> None:
    scene = draw_scene(np.random.default_rng(2), "qr")
    assert np.array_equal(shoot(scene), shoot(scene))


@pytest.mark.parametrize("module_px", [2.0, 3.0])
def test_a_barcode_module_covers_the_drawn_width_in_the_frame(module_px: float) -> None:
    scene = level_scene("code128", module_px)
    [found] = zxingcpp.read_barcodes(to_grey(shoot(scene)), formats=zxingcpp.BarcodeFormat.Code128)
    width = found.position.top_right.x - found.position.top_left.x
    # an 18-digit Code 128 is 134 modules from the first bar to the last
    assert found.text == scene.code
    assert width == pytest.approx(134 * module_px, rel=0.08)


def test_rolls_are_mostly_small_and_sometimes_any_angle() -> None:
    rolls = [abs(draw_scene(np.random.default_rng(i), "code128").roll_deg) for i in range(200)]
    assert sum(r < 20 for r in rolls) > 100 and sum(r > 45 for r in rolls) > 30


def test_the_ladder_reads_a_fixed_sample_the_plain_decoder_mostly_misses() -> None:
    items = list(samples("tuning", "code128", 12))
    plain, ladder = ZxingDecoder(), build_decoder("zxing")
    plain_hits = sum(s.scene.code in {d.text for d in plain.decode(s.grey)} for s in items)
    reads = [{d.text for d in ladder.decode(s.grey)} for s in items]
    assert [s.scene.code in r for s, r in zip(items, reads, strict=True)] == [True] * 12
    assert all(r <= {s.scene.code} for s, r in zip(items, reads, strict=True))  # nothing else
    assert plain_hits <= 9


def test_a_misread_beside_the_true_read_on_one_barcode_is_dropped() -> None:
    """Tuning frame 505: its barcode crop read as the shown code and as a second code whose
    check character happened to fit. A crop holds one barcode, so only the code that its
    halves confirm is delivered."""
    item = sample("tuning", "code128", 505)
    assert [d.text for d in build_decoder("zxing").decode(item.grey)] == [item.scene.code]


def test_qr_codes_of_the_sample_are_read() -> None:
    items = list(samples("tuning", "qr", 4))
    decoder = build_decoder("zxing")
    assert [[d.text for d in decoder.decode(s.grey)] for s in items] == [
        [s.scene.code] for s in items
    ]


@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=20, max_size=160),
    dark=st.integers(0, 120),
    angle=st.floats(-40, 40),
)
def test_stripes_that_are_no_code_never_decode(widths: list[int], dark: int, angle: float) -> None:
    """A striped shirt, a keyboard, a radiator grille: the ladder works hardest on exactly
    these (they look like bars) and must still read nothing."""
    row = np.concatenate(
        [np.full(w, dark if i % 2 else 230, np.uint8) for i, w in enumerate(widths)]
    )
    stripes = np.tile(row[:600], (120, 1))
    frame = np.full((480, 640), 200, np.uint8)
    frame[180:300, 20 : 20 + stripes.shape[1]] = stripes
    turn = cv2.getRotationMatrix2D((320, 240), angle, 1.0)
    turned = np.asarray(cv2.warpAffine(frame, turn, (640, 480), borderValue=200), np.uint8)
    assert build_decoder("zxing").decode(turned) == []


class Stub:
    """A decoder that reads `whole` on a full frame and `part` on anything smaller."""

    name = "stub"

    def __init__(self, whole: str, part: str) -> None:
        self.whole, self.part = whole, part

    def decode(self, grey: np.ndarray) -> list[Decoded]:
        if grey.shape == (480, 640):
            corners = ((200.0, 240.0), (440.0, 240.0), (440.0, 260.0), (200.0, 260.0))
            return [Decoded(self.whole, "code128", corners)]
        return [Decoded(self.part, "code128")]


def test_a_code128_read_on_the_frame_counts_only_when_its_own_bars_confirm_it() -> None:
    blank = np.full((480, 640), 255, np.uint8)  # the ladder's later steps never start on it
    assert [d.text for d in LadderDecoder(Stub("1311", "1311")).decode(blank)] == ["1311"]
    assert LadderDecoder(Stub("1311", "1399")).decode(blank) == []
