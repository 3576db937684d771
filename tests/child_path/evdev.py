"""A stand-in for python-evdev over a FIFO, for tests that run the real HID drivers in a child
process: the kernel's `struct input_event` records (24 bytes on 64-bit Linux) written into the
FIFO are what a USB keypad would deliver. Put this directory first on the child's PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

RECORD = struct.Struct("llHHi")  # struct timeval (sec, usec), type, code, value


@dataclass(frozen=True)
class InputEvent:
    sec: int
    usec: int
    type: int
    code: int
    value: int


def encode(event: InputEvent) -> bytes:
    """The record the kernel would write for `event`."""
    return RECORD.pack(event.sec, event.usec, event.type, event.code, event.value)


class InputDevice:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def grab(self) -> None:
        """Nothing else reads the FIFO."""

    def close(self) -> None:
        os.close(self._fd)

    async def async_read_loop(self) -> AsyncIterator[InputEvent]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = os.read(self._fd, RECORD.size)
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_reader(self._fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_reader(self._fd)
                continue
            if not data:  # every writer closed the FIFO: the keypad was unplugged
                raise OSError(errno.ENODEV, "No such device")
            yield InputEvent(*RECORD.unpack(data))
