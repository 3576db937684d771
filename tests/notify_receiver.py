"""The stand-alone notification receiver on an event loop thread, for tests written without
asyncio; and signed notification deliveries as WeChat sends them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import rsa

from pos_terminal.business_day import BusinessDay
from pos_terminal.journal import Journal
from pos_terminal.notify_server import NotifyServer, owned_journal
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatCredentials

T = TypeVar("T")
SHANGHAI = BusinessDay(ZoneInfo("Asia/Shanghai"))


@dataclass
class Receiver:
    server: NotifyServer
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return self.server.url

    def journal(self, call: Callable[[Journal], T]) -> T:
        """Run `call` on the receiver's journal thread: the journal keeps one writer."""
        return asyncio.run_coroutine_threadsafe(self.server.journal(call), self.loop).result(10)


@contextlib.contextmanager
def receiver_thread(
    creds: WeChatCredentials, journal_path: Path, **options: Any
) -> Iterator[Receiver]:
    """`owned_journal` and a NotifyServer (`options`; the merchant in Shanghai unless given)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="receiver-loop", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    async def start() -> NotifyServer:
        journal = await stack.enter_async_context(owned_journal(journal_path))
        server = NotifyServer(creds, journal, **{"business_day": SHANGHAI, **options})
        return await stack.enter_async_context(server)

    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield Receiver(server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def free_port() -> int:
    """A loopback port free a moment ago: for a notify_url that must name it before it listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed_headers(
    key: rsa.RSAPrivateKey, serial: str, body: bytes, *, age_s: float = 0
) -> dict[str, str]:
    """The Wechatpay-* headers WeChat signs a notification with."""
    timestamp, nonce = str(int(time.time() - age_s)), wechat_sign.new_nonce()
    return {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": wechat_sign.sign(
            key, wechat_sign.response_message(timestamp, nonce, body)
        ),
        "Wechatpay-Signature-Type": wechat_sign.SCHEME,
    }
