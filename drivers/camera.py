"""Camera code scanner: OpenCV capture in a worker thread, decoding of grey downscaled frames in
another, each payment code delivered once as a CodeRead event.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from drivers.repeats import RepeatFilter
from pos_terminal.config_fields import bounds
from pos_terminal.errors import DeviceError
from pos_terminal.ports import Backend, CodeRead, DeviceSink, Notice
from pos_terminal.supervision import Restart, worker_thread

if TYPE_CHECKING:  # numpy and the decoders (OpenCV) load when a camera opens, not with config
    import numpy.typing as npt

    from drivers.decoders import CodeDecoder

log = logging.getLogger(__name__)

MAX_MISSES = 100  # consecutive failed reads (about 1 s) before the camera is reopened
RESTART = Restart(first_s=0.5, max_s=30.0, healthy_s=2.0)  # a capture or decode thread that raised


@dataclass(frozen=True)
class CameraConfig:
    """`devices.scanner` with `type: camera`: OpenCV capture, decoded on a worker thread."""

    device: str = "/dev/video0"  # a path, or an index such as "0"
    width: int = field(default=640, metadata=bounds(min=160, max=3840))
    height: int = field(default=480, metadata=bounds(min=120, max=2160))
    decoder: Literal["zxing", "pyzbar"] = "zxing"
    # frames wider than this are downscaled before decoding (cost grows with the pixel count)
    decode_width: int = field(default=640, metadata=bounds(min=160, max=3840))
    preprocess: bool = True  # on a miss, retry on the barcode cut out upright, then levelled
    repeat_window_s: float = field(default=3.0, metadata=bounds(min=0.0, max=600.0))
    reopen_delay_s: float = field(default=2.0, metadata=bounds(min=0.1, max=60.0))


class FrameSource(Protocol):
    """A blocking frame grabber, used from one worker thread only."""

    def open(self) -> None:
        """Raises DeviceError when the camera cannot be opened."""

    def read(self) -> npt.NDArray[Any] | None:
        """The next frame, or None when none came (timeout, unplugged)."""

    def close(self) -> None: ...


class OpenCVSource:
    """cv2.VideoCapture (V4L2 on Linux)."""

    def __init__(self, config: CameraConfig) -> None:
        self._config = config
        self._capture: Any = None

    def open(self) -> None:
        import cv2

        device: int | str = (
            int(self._config.device) if self._config.device.isdigit() else self._config.device
        )
        capture = cv2.VideoCapture(device)
        if not capture.isOpened():
            raise DeviceError(
                f"camera {self._config.device}: cannot open it; check the cable, "
                "`v4l2-ctl --list-devices`, and that the user is in group `video`"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._config.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._config.height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of stale ones
        self._capture = capture

    def read(self) -> npt.NDArray[Any] | None:
        ok, image = self._capture.read()
        return image if ok else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


@dataclass
class CameraStats:
    captured: int = 0
    skipped: int = 0  # frames dropped because the decoder was still busy
    decoded: int = 0  # frames in which a code was found
    delivered: int = 0  # codes posted (after the repeat window)


class CameraScanner:
    """InputDevice: the capture thread keeps only the newest frame; the decode thread takes it
    when idle, so frames that arrive during a decode are skipped rather than queued.
    """

    def __init__(
        self,
        config: CameraConfig,
        source: FrameSource | None = None,
        *,
        decoder: CodeDecoder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._source = source or OpenCVSource(config)
        self._decoder = decoder
        self._clock = clock
        self._repeats = RepeatFilter(config.repeat_window_s)
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._latest: npt.NDArray[Any] | None = None
        self._busy = False
        self._threads: list[threading.Thread] = []
        self.stats = CameraStats()

    async def open(self, post: DeviceSink, notice: Notice | None = None) -> None:
        """Raises DeviceError (camera missing, pyzbar without libzbar)."""
        from drivers.decoders import build_decoder

        decoder = self._decoder or build_decoder(
            self._config.decoder, ladder=self._config.preprocess
        )
        self._source.open()
        self._stop.clear()
        decode = functools.partial(self._decode_loop, decoder, post)
        self._threads = [
            worker_thread(
                "camera capture",
                self._capture_loop,
                stop=self._stop,
                notice=notice,
                restart=RESTART,
            ),
            worker_thread("camera decode", decode, stop=self._stop, notice=notice, restart=RESTART),
        ]
        for thread in self._threads:
            thread.start()

    async def close(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads = []
        self._source.close()

    def _capture_loop(self) -> None:
        misses = 0
        while not self._stop.is_set():
            try:
                image = self._source.read()
            except DeviceError as exc:
                log.error("%s; retrying in %.0f s", exc, self._config.reopen_delay_s)
                self._stop.wait(self._config.reopen_delay_s)
                continue
            if image is None:
                misses += 1
                if misses >= MAX_MISSES:  # unplugged: V4L2 read fails at once, forever
                    misses = 0
                    self._reopen()
                else:
                    self._stop.wait(0.01)
                continue
            misses = 0
            self.stats.captured += 1
            with self._ready:
                if self._busy or self._latest is not None:
                    self.stats.skipped += 1
                    if self._busy:
                        continue
                self._latest = image
                self._ready.notify()

    def _reopen(self) -> None:
        log.warning("camera: no frames; reopening in %.0f s", self._config.reopen_delay_s)
        self._source.close()
        while not self._stop.wait(self._config.reopen_delay_s):
            try:
                self._source.open()
            except DeviceError as exc:
                log.debug("%s", exc)
                continue
            log.info("camera reopened")
            return

    def _decode_loop(self, decoder: CodeDecoder, post: DeviceSink) -> None:
        while True:
            with self._ready:
                while self._latest is None and not self._stop.is_set():
                    self._ready.wait()
                if self._stop.is_set() or self._latest is None:
                    return
                image, self._latest, self._busy = self._latest, None, True
            try:
                self._handle(decoder, image, post)
            finally:
                with self._ready:
                    self._busy = False

    def _handle(self, decoder: CodeDecoder, image: npt.NDArray[Any], post: DeviceSink) -> None:
        import numpy as np

        from drivers.decoders import to_grey

        try:
            grey = to_grey(np.asarray(image), self._config.decode_width)
        except ValueError as exc:
            log.warning("camera frame skipped: %s", exc)
            return
        found = decoder.decode(grey)
        if found:
            self.stats.decoded += 1
        for code in dict.fromkeys(d.text.strip() for d in found):
            if code and self._repeats.accept(code, self._clock()):
                self.stats.delivered += 1
                post(CodeRead(code))


BACKEND = Backend(config=CameraConfig, factory=CameraScanner)
