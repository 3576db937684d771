"""Mock receipt printer: each job becomes `<name>.bin` (the bytes) and `<name>.txt` (decoded)."""

from __future__ import annotations

import asyncio
import codecs
import re
from pathlib import Path
from types import TracebackType

from hw_mocks.escpos_decode import DecodedReceipt, decode, render_text
from pos_terminal.errors import DeviceError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def job_file_stem(name: str) -> str:
    """A file name from a job name: no path separators, no leading dots, never empty."""
    stem = _UNSAFE.sub("_", name).lstrip(".")[:_MAX_NAME]
    return stem or "job"


class MockPrinter:
    """Implements devices.ReceiptPrinter by writing files; `last` and `jobs` serve tests."""

    def __init__(self, out_dir: Path, *, encoding: str = "gb18030") -> None:
        self.out_dir = Path(out_dir)
        self.encoding = codecs.lookup(encoding).name  # LookupError now, not at the first job
        self.last: DecodedReceipt | None = None
        self.jobs = 0
        self._open = False

    async def open(self) -> None:
        await asyncio.to_thread(self.out_dir.mkdir, parents=True, exist_ok=True)
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

    async def print_job(self, name: str, data: bytes) -> None:
        """Write the job's bytes and its text rendering.

        Raises:
            DeviceError: the printer is not open, or the files cannot be written.
        """
        if not self._open:
            raise DeviceError("mock printer: print_job before open(); open the printer first")
        stem = job_file_stem(name)
        decoded = await asyncio.to_thread(decode, data, encoding=self.encoding)
        try:
            await asyncio.to_thread(self._write, stem, bytes(data), render_text(decoded))
        except OSError as exc:
            raise DeviceError(f"mock printer: cannot write {self.out_dir / stem}: {exc}") from exc
        self.last = decoded
        self.jobs += 1

    def _write(self, stem: str, data: bytes, text: str) -> None:
        (self.out_dir / f"{stem}.bin").write_bytes(data)
        (self.out_dir / f"{stem}.txt").write_text(text, encoding="utf-8")
