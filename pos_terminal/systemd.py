"""systemd integration: readiness and watchdog pings over $NOTIFY_SOCKET (sd_notify protocol)."""

from __future__ import annotations

import asyncio
import os
import socket


def notify(message: str) -> bool:
    """Send one sd_notify datagram ("READY=1", "WATCHDOG=1"); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


async def watchdog() -> None:
    """Ping the watchdog at half its interval from the event loop: a ping proves the loop runs."""
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(usec / 2_000_000)
