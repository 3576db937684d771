"""WeChat Pay notifications, received on the terminal's own device into its journal.

Until the store server takes notifications over, the receiver runs beside the terminal, on the
same device and journal, and never as a second writer: inside the terminal (`notify.listen`) it
writes through the terminal's journal thread; stand-alone (`pos-terminal notify-server`, while no
terminal runs) it holds the journal's lock for its lifetime. Each POST to the path of
`wechat.notify_url` is verified, decrypted and recorded before it is answered, well within
WeChat's 5 s: 204, 4xx `{"code": "FAIL"}` when refused, 500 when recording failed (logged);
WeChat retries all but 2xx.

uvicorn serves it (http_server.py) behind the HTTPS proxy `notify_url` names, with limits: a
head of 8 KiB, a body of 64 KiB (read streaming; a larger Content-Length is refused unread, a
malformed one by h11), the whole request within `notify.request_timeout_s`, idle keep-alive 5 s,
and `notify.max_connections` connections at once.

Notifications are signed by the WeChat Pay public key or, during the key switch, a platform
certificate (reference §1.2). One naming an unknown certificate serial triggers `refresh` (at most
once per 60 s), which loads the certificates into the shared `PlatformKeys`, and one more try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pos_terminal.business_day import BusinessDay
from pos_terminal.config import NotifyConfig
from pos_terminal.errors import PosError
from pos_terminal.http_server import HttpServer, Limits, ListenError
from pos_terminal.journal import Journal, JournalWorker
from pos_terminal.journal_lock import JournalLock
from pos_terminal.payments.wechat import WeChatCredentials, WeChatPayClient
from pos_terminal.payments.wechat_keys import (
    PlatformKeys,
    RefreshThrottle,
    looks_like_certificate_serial,
)
from pos_terminal.payments.wechat_notify import (
    MAX_NOTIFICATION_BYTES,
    Merchant,
    Notification,
    NotificationError,
    UnknownNotificationSigner,
    open_notification,
    record,
)

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 4.0  # connect and read timeout of the certificate download
DEFAULTS = NotifyConfig()
TERMINAL_RUNS = (
    "a terminal runs on this journal: receive notifications inside it instead "
    "(notify.listen in its configuration)"
)

Refresh = Callable[[], Awaitable[object]]


class _TooLarge(NotificationError):
    """A body over MAX_NOTIFICATION_BYTES, declared or sent."""


class NotifyServer:
    """The receiver: a Starlette app served by uvicorn on the running loop; `async with` it."""

    def __init__(
        self,
        creds: WeChatCredentials,
        journal: JournalWorker,
        *,
        business_day: BusinessDay,
        path: str = "/wechatpay/notify",
        host: str = "127.0.0.1",
        port: int = 0,
        settings: NotifyConfig = DEFAULTS,
        clock: Callable[[], float] = time.time,
        keys: PlatformKeys | None = None,
        refresh: Refresh | None = None,
    ) -> None:
        """`journal` is the journal owner's thread: the terminal's, or `owned_journal`'s.
        `keys` defaults to the credentials' public key; `refresh` loads the platform
        certificates into `keys` (its result is ignored) or raises a PosError."""
        self.creds = creds
        self.journal = journal
        self.merchant = Merchant(creds.mchid, creds.appid, business_day)
        self.path = path
        self.settings = settings
        self.clock = clock
        self.keys = keys if keys is not None else PlatformKeys.from_credentials(creds)
        self._refresh = refresh
        self._refresh_lock = asyncio.Lock()
        self._throttle = RefreshThrottle(clock)
        app = Starlette(routes=[Route(path, self._notify, methods=["POST"])])
        limits = Limits(settings.request_timeout_s, settings.max_connections)
        self._http = HttpServer(app, host, port, limits)
        self.accepted = 0
        self.refused = 0

    @property
    def url(self) -> str:
        host, port = self._http.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}{self.path}"

    async def open(self) -> None:
        """Listen and serve on the running loop.

        Raises:
            ListenError: the address cannot be listened on (in use, not ours).
        """
        await self._http.open()

    async def close(self) -> None:
        """Stop listening; notifications in flight get a moment to be recorded."""
        await self._http.close()

    async def __aenter__(self) -> NotifyServer:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ one notification

    async def _notify(self, request: Request) -> Response:
        try:
            body = await _read_body(request)
            note = await self._open(request.headers, body)
            stamp = datetime.fromtimestamp(self.clock(), self.merchant.business_day.tz)
            outcome = await self.journal(
                lambda j: record(j, note, now=stamp, merchant=self.merchant)
            )
        except NotificationError as exc:
            self.refused += 1
            log.warning("notification refused: %s", exc)
            if isinstance(exc, _TooLarge):  # the rest of the body is never read: hang up
                return _fail(413, str(exc), {"Connection": "close"})
            return _fail(400, str(exc))
        except ClientDisconnect:
            return Response(status_code=400)  # no one is left to hear it
        except Exception:  # one site per request: WeChat retries a 500, nothing is lost
            log.exception("notification could not be recorded")
            return _fail(500, "internal error")
        self.accepted += 1
        log.info("notification %s %s: %s", note.id, note.event_type, outcome)
        return Response(status_code=204)

    async def _open(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            return self._open_once(headers, body)
        except UnknownNotificationSigner as exc:
            if not (looks_like_certificate_serial(exc.serial) and await self._learn(exc.serial)):
                raise
        return self._open_once(headers, body)

    def _open_once(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return open_notification(
            headers,
            body,
            keys=self.keys.snapshot(),
            apiv3_key=self.creds.apiv3_key,
            now=self.clock(),
        )

    async def _learn(self, serial: str) -> bool:
        """Whether certificate `serial` is known, refreshing if none was done for 60 s."""
        async with self._refresh_lock:  # concurrent notifications wait for one download
            if serial in self.keys:
                return True
            if self._refresh is None or not self._throttle.allow():
                return False
            try:
                await self._refresh()
            except PosError as exc:
                log.warning("platform certificates could not be loaded: %s", exc)
                return False
            return serial in self.keys


async def _read_body(request: Request) -> bytes:
    """The body, never more than MAX_NOTIFICATION_BYTES of it read, whatever the framing says.

    h11 has refused a Content-Length that is not a number (400) before the app runs.
    """
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_NOTIFICATION_BYTES:
        raise _TooLarge(f"Content-Length {declared:.20} is over {MAX_NOTIFICATION_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise _TooLarge(f"body is over {MAX_NOTIFICATION_BYTES} bytes")
    return bytes(body)


def _fail(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"code": "FAIL", "message": message[:200]}, status, headers)


# ---------------------------------------------------------------- the two ways to run it


@contextlib.asynccontextmanager
async def in_terminal(
    settings: NotifyConfig,
    creds: WeChatCredentials,
    journal: JournalWorker,
    *,
    path: str,
    business_day: BusinessDay,
    keys: PlatformKeys,
    hosts: Sequence[str],
    clock: Callable[[], float],
) -> AsyncIterator[NotifyServer | None]:
    """The receiver inside the terminal, writing through its journal thread; None when
    `notify.listen` is empty. `keys` are shared with the terminal's client.

    Raises:
        ListenError: `notify.listen` cannot be listened on.
    """
    address = settings.address
    if address is None:
        yield None
        return
    server = NotifyServer(
        creds,
        journal,
        business_day=business_day,
        path=path,
        host=address[0],
        port=address[1],
        settings=settings,
        clock=clock,
        keys=keys,
        refresh=certificate_refresh(creds, hosts, keys),
    )
    try:
        await server.open()
    except ListenError as exc:
        raise ListenError(f"the notification receiver (notify.listen) {exc}") from exc
    try:
        log.info("receiving WeChat Pay notifications at %s", server.url)
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def owned_journal(path: Path) -> AsyncIterator[JournalWorker]:
    """The journal for a receiver with no terminal running: its lock, held throughout, and a
    journal thread of its own.

    Raises:
        JournalLocked: a terminal runs on this journal (the message says to use its receiver).
    """
    with JournalLock(path, advice=TERMINAL_RUNS):
        worker = JournalWorker(Journal(path))
        try:
            await worker(lambda j: j.open())
            yield worker
        finally:
            await worker(lambda j: j.close())
            worker.shutdown()


def serve(
    creds: WeChatCredentials,
    journal_path: Path,
    host: str,
    port: int,
    *,
    path: str,
    settings: NotifyConfig,
    business_day: BusinessDay,
    wechat_hosts: Sequence[str] = (),
) -> int:
    """`pos-terminal notify-server`: run stand-alone until SIGINT/SIGTERM; prints its URL.

    With `wechat_hosts`, platform certificates are downloaded from there when needed.

    Raises:
        JournalLocked: a terminal runs on this journal.
        ListenError: the address cannot be listened on.
    """
    keys = PlatformKeys.from_credentials(creds)
    refresh = certificate_refresh(creds, wechat_hosts, keys) if wechat_hosts else None

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with (
            owned_journal(journal_path) as journal,
            NotifyServer(
                creds,
                journal,
                business_day=business_day,
                path=path,
                host=host,
                port=port,
                settings=settings,
                keys=keys,
                refresh=refresh,
            ) as server,
        ):
            print(f"notify server at {server.url} (journal {journal_path})", flush=True)
            await stop.wait()

    asyncio.run(run())
    return 0


def certificate_refresh(
    creds: WeChatCredentials, hosts: Sequence[str], keys: PlatformKeys
) -> Refresh:
    """A `refresh` for NotifyServer: one short-lived client loads the certificates into `keys`."""

    async def download() -> list[str]:
        async with WeChatPayClient(
            creds,
            base_urls=hosts,
            connect_timeout_s=REFRESH_TIMEOUT_S,
            read_timeout_s=REFRESH_TIMEOUT_S,
            keys=keys,
        ) as client:
            return await client.refresh_certificates()

    return download
