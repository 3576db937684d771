"""Mock receipt printer: each job becomes `<name>.bin` (bytes), `<name>.txt` and `<name>.png`.

Tests set `paper` and `online` to act out a paper-out or an unplugged printer.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hw_mocks.escpos_decode import DecodedReceipt, decode, render_text
from hw_mocks.receipt_png import ReceiptPainter
from pos_terminal.errors import DeviceError
from pos_terminal.ports import Backend, Notice, PaperStatus, PrinterSettings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120
NAMES_KEPT = 200  # job names kept for tests; a long headless run must not grow
PNG_DEVICE = "receipt PNG"  # names the pictures' font advice among the device notices


def job_file_stem(name: str) -> str:
    """A file name from a job name: no path separators, no leading dots, never empty."""
    stem = _UNSAFE.sub("_", name).lstrip(".")[:_MAX_NAME]
    return stem or "job"


@dataclass(frozen=True)
class MockPrinterConfig(PrinterSettings):
    """`devices.printer` with `type: mock`: the paper, and where the receipts land."""

    out_dir: str = "var/receipts"  # each receipt lands here as .bin, .txt and .png
    png: bool = True  # also draw each receipt as a picture


class MockPrinter:
    """Implements ports.ReceiptPrinter by writing files; `last`, `jobs` and `names` (the latest
    jobs' names, oldest first) serve tests.

    `paper` is what the paper sensor reports; with `PaperStatus.OUT` or `online = False` a job
    fails with DeviceError and nothing is written, as on a real printer that prints nothing.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        encoding: str = "gb18030",
        dots_per_line: int = 384,
        png: bool = True,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.encoding = codecs.lookup(encoding).name  # LookupError now, not at the first job
        self.dots_per_line = dots_per_line
        self.png = png
        self.paper = PaperStatus.OK
        self.online = True
        self.last: DecodedReceipt | None = None
        self.jobs = 0
        self.names: deque[str] = deque(maxlen=NAMES_KEPT)
        self._painter: ReceiptPainter | None = None
        self._open = False

    async def open(self, notice: Notice | None = None) -> None:
        """`notice` hears once, at open, that receipt pictures lack a font and how to get it."""
        await asyncio.to_thread(self.out_dir.mkdir, parents=True, exist_ok=True)
        if self.png and self._painter is None:  # the fonts load on a worker thread, once
            self._painter = await asyncio.to_thread(ReceiptPainter, self.dots_per_line)
            if self._painter.font_advice and notice is not None:
                notice(PNG_DEVICE, self._painter.font_advice)
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def __aenter__(self) -> MockPrinter:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def paper_status(self) -> PaperStatus:
        """The paper sensor; an offline printer does not answer, so that is UNKNOWN."""
        return self.paper if self.online and self._open else PaperStatus.UNKNOWN

    async def print_job(self, name: str, data: bytes) -> None:
        """Write the job's bytes, its text rendering and (if enabled) its picture.

        Raises:
            DeviceError: the printer is not open, offline or out of paper, or the files
                cannot be written.
        """
        if not self._open:
            raise DeviceError("mock printer: print_job before open(); open the printer first")
        if not self.online:
            raise DeviceError("mock printer: offline; check the cable and the power")
        if self.paper is PaperStatus.OUT:
            raise DeviceError("mock printer: paper out; load a new roll")
        stem = job_file_stem(name)
        decoded = await asyncio.to_thread(decode, data, encoding=self.encoding)
        try:
            await asyncio.to_thread(self._write, stem, bytes(data), decoded)
        except OSError as exc:
            raise DeviceError(f"mock printer: cannot write {self.out_dir / stem}: {exc}") from exc
        self.last = decoded
        self.jobs += 1
        self.names.append(name)

    def _write(self, stem: str, data: bytes, decoded: DecodedReceipt) -> None:
        (self.out_dir / f"{stem}.bin").write_bytes(data)
        (self.out_dir / f"{stem}.txt").write_text(render_text(decoded), encoding="utf-8")
        if self._painter is not None:
            self._painter.save(decoded, self.out_dir / f"{stem}.png")


def _from_config(config: MockPrinterConfig) -> MockPrinter:
    return MockPrinter(
        Path(config.out_dir),
        encoding=config.encoding,
        dots_per_line=config.dots_per_line,
        png=config.png,
    )


BACKEND = Backend(config=MockPrinterConfig, factory=_from_config)
