"""The camera scanner driver on the mock camera: each code delivered once, busy frames skipped."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import CameraConfig, CameraScanner
from drivers.decoders import Decoded, Grey, build_decoder
from drivers.repeats import RepeatFilter
from hw_mocks.camera import (
    Distortion,
    MockCamera,
    empty_frame,
    frame,
    payment_code,
    render_code128,
    render_micro_qr,
    render_qr,
)
from pos_terminal.errors import DeviceError
from pos_terminal.ports import CodeRead, DeviceEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def qr_frame(code: str, seed: int = 0) -> np.ndarray:
    return frame(render_qr(code, 4), Distortion(rotate=seed * 7.0, noise=6), seed=seed)


async def test_a_code_held_in_view_is_delivered_once() -> None:
    code = payment_code(1)
    # held in view until decoded three times: a busy machine skips frames, so no fixed count
    frames = [qr_frame(code, i) for i in range(8)]
    camera = MockCamera(frames, loop=True, frame_interval_s=0.02)
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(CameraConfig(), camera, decoder=build_decoder("zxing"))
    await scanner.open(posted.append)
    wait_for(lambda: scanner.stats.decoded >= 3, timeout_s=20.0)
    await scanner.close()
    assert posted == [CodeRead(code)]


async def test_the_same_code_is_delivered_again_after_the_repeat_window() -> None:
    code = payment_code(2)
    clock = Clock()
    camera = MockCamera([qr_frame(code)], loop=True, frame_interval_s=0.002)
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(CameraConfig(repeat_window_s=3.0), camera, clock=clock)
    await scanner.open(posted.append)
    wait_for(lambda: scanner.stats.decoded >= 3)
    clock.now += 10.0  # the code left the view and came back: a new scan
    decoded = scanner.stats.decoded
    wait_for(lambda: scanner.stats.decoded >= decoded + 3)
    await scanner.close()
    assert posted == [CodeRead(code), CodeRead(code)]


async def test_two_different_codes_are_both_delivered() -> None:
    first, second = payment_code(3), payment_code(4)
    camera = MockCamera([qr_frame(first), qr_frame(second)], frame_interval_s=0.05)
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(CameraConfig(), camera)
    await scanner.open(posted.append)
    wait_for(lambda: len(posted) == 2)
    await scanner.close()
    assert posted == [CodeRead(first), CodeRead(second)]


async def test_a_micro_qr_in_view_does_not_stop_the_camera() -> None:
    qr_code, bar_code = payment_code(7), payment_code(8)
    micro = frame(render_micro_qr("12345", 8))
    # played in a loop until both codes were read: a busy decoder skips frames, so one pass
    # could miss a code; the repeat window keeps each one delivered once
    frames = [micro] * 5 + [qr_frame(qr_code)] * 5 + [frame(render_code128(bar_code, 3))] * 5
    camera = MockCamera(frames, loop=True, frame_interval_s=0.03)
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(
        CameraConfig(repeat_window_s=60.0), camera, decoder=build_decoder("zxing")
    )
    await scanner.open(posted.append)
    wait_for(lambda: len(posted) >= 2, timeout_s=20.0)
    await scanner.close()
    assert sorted(posted, key=str) == sorted([CodeRead(qr_code), CodeRead(bar_code)], key=str)


class Notices(list[tuple[str, str]]):
    """The notice callback, called from the camera's threads."""

    def __call__(self, device: str, message: str) -> None:
        self.append((device, message))


class FlakyCamera(MockCamera):
    """A camera whose driver raises once mid-stream (as cv2 does on a USB hiccup), then works."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__(frames, frame_interval_s=0.03)
        self.raised = False

    def read(self) -> np.ndarray | None:
        if self.reads == 2 and not self.raised:
            self.raised = True
            raise cv2.error("VIDIOC_DQBUF: Input/output error")
        return super().read()


@pytest.mark.slow
async def test_a_capture_thread_that_raises_is_reported_and_restarted() -> None:
    first, second = payment_code(9), payment_code(10)
    camera = FlakyCamera([qr_frame(first)] * 2 + [qr_frame(second)] * 5)
    posted: list[DeviceEvent] = []
    notices = Notices()
    scanner = CameraScanner(CameraConfig(), camera)
    await scanner.open(posted.append, notices)
    wait_for(lambda: len(posted) == 2, timeout_s=20.0)
    wait_for(lambda: len(notices) == 2)  # and fine again once it ran a while
    await scanner.close()
    assert posted == [CodeRead(first), CodeRead(second)]
    [(device, trouble), fine] = notices
    assert device == "camera capture" and "error" in trouble
    assert fine == ("camera capture", "")


class BrokenOnceDecoder:
    """zxing-cpp behind a decoder that raises on its first frame, like the Micro QR KeyError."""

    name = "broken-once"

    def __init__(self) -> None:
        self._real = build_decoder("zxing")
        self.calls = 0

    def decode(self, grey: Grey) -> list[Decoded]:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("BarcodeFormat.MicroQRCode")
        return self._real.decode(grey)


@pytest.mark.slow
async def test_a_decode_thread_that_raises_is_reported_and_restarted() -> None:
    qr_code, bar_code = payment_code(11), payment_code(12)
    frames = [qr_frame(qr_code)] * 30 + [frame(render_code128(bar_code, 3))] * 10
    camera = MockCamera(frames, frame_interval_s=0.03)
    posted: list[DeviceEvent] = []
    notices = Notices()
    scanner = CameraScanner(CameraConfig(), camera, decoder=BrokenOnceDecoder())
    await scanner.open(posted.append, notices)
    wait_for(lambda: len(posted) == 2, timeout_s=20.0)
    wait_for(lambda: len(notices) == 2)
    await scanner.close()
    assert posted == [CodeRead(qr_code), CodeRead(bar_code)]
    assert [(d, bool(m)) for d, m in notices] == [("camera decode", True), ("camera decode", False)]


class SlowDecoder:
    name = "slow"

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def decode(self, grey: Grey) -> list[Decoded]:
        self.calls += 1
        self.release.wait(2.0)
        return []


async def test_frames_arriving_during_a_decode_are_skipped_not_queued() -> None:
    decoder = SlowDecoder()
    camera = MockCamera([empty_frame("black")] * 50, frame_interval_s=0.001)
    scanner = CameraScanner(CameraConfig(), camera, decoder=decoder)
    await scanner.open(lambda event: None)
    wait_for(lambda: camera.reads == 50)
    decoder.release.set()
    await scanner.close()
    assert decoder.calls <= 3
    assert scanner.stats.skipped >= 47


async def test_broken_frames_from_the_camera_are_skipped() -> None:
    code = payment_code(5)
    bad = [np.zeros((0, 0), np.uint8), np.zeros((4,), np.uint8)]
    camera = MockCamera([*bad, qr_frame(code)], frame_interval_s=0.02)
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(CameraConfig(), camera)
    await scanner.open(posted.append)
    wait_for(lambda: posted != [])
    await scanner.close()
    assert posted == [CodeRead(code)]


def test_the_mock_camera_plays_image_files(tmp_path: Path) -> None:
    code = payment_code(6)
    path = tmp_path / "code.png"
    cv2.imwrite(str(path), qr_frame(code))
    camera = MockCamera.from_files([path])
    camera.open()
    image = camera.read()
    assert image is not None
    assert [d.text for d in build_decoder("zxing").decode(image)] == [code]
    assert camera.read() is None


def test_the_mock_camera_refuses_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(DeviceError, match=r"broken\.png"):
        MockCamera.from_files([path])


def test_a_missing_camera_device_says_what_to_check() -> None:
    from drivers.camera import OpenCVSource

    with pytest.raises(DeviceError, match="cannot open"):
        OpenCVSource(CameraConfig(device="/dev/video-none")).open()


def test_the_repeat_filter_drops_a_code_seen_within_the_window() -> None:
    seen = RepeatFilter(3.0)
    assert seen.accept("1", 0.0)
    assert not seen.accept("1", 2.0)
    assert not seen.accept("1", 4.5)  # each sighting extends the window
    assert seen.accept("2", 4.5)
    assert seen.accept("1", 8.0)


@pytest.mark.slow
async def test_a_camera_that_stops_giving_frames_is_reopened() -> None:
    code = payment_code(7)
    camera = MockCamera([])  # unplugged: every read fails
    opens: list[int] = []
    real_open = camera.open

    def replug() -> None:
        opens.append(1)
        if len(opens) == 2:
            camera._frames = [qr_frame(code)]
            camera._index = 0
        real_open()

    camera.open = replug  # type: ignore[method-assign]
    posted: list[DeviceEvent] = []
    scanner = CameraScanner(CameraConfig(reopen_delay_s=0.1), camera)
    await scanner.open(posted.append)
    wait_for(lambda: posted != [])
    await scanner.close()
    assert posted == [CodeRead(code)] and len(opens) == 2
