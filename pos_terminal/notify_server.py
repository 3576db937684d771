"""`pos-terminal notify-server`: receives WeChat Pay notifications on a store server.

For a store server with a public address (a terminal behind NAT polls instead). Each POST is
verified, decrypted and recorded into the journal before it is answered — well within WeChat's
5 s — with 204 on success and 4xx `{"code": "FAIL"}` when refused, so WeChat retries.

Notifications are signed by the WeChat Pay public key or, during the key switch, a platform
certificate (reference §1.2). One naming an unknown certificate serial triggers `refresh` (at most
once per 60 s), which loads the certificates into the server's `PlatformKeys`, and one more try.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from pos_terminal.business_day import BusinessDay
from pos_terminal.clock import SystemClock
from pos_terminal.errors import PosError
from pos_terminal.journal import Journal
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

REFRESH_TIMEOUT_S = 4.0  # connect and read timeout of the certificate download (`serve`)


class NotifyServer:
    """A threaded HTTP receiver; journal writes are serialised through one lock."""

    def __init__(
        self,
        creds: WeChatCredentials,
        journal_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        keys: PlatformKeys | None = None,
        refresh: Callable[[], object] | None = None,
        business_day: BusinessDay | None = None,
    ) -> None:
        """`keys` defaults to the credentials' public key; `refresh` loads the platform
        certificates into `keys` (blocking; its result is ignored) or raises a PosError."""
        self.creds = creds
        self.clock = clock
        self.merchant = Merchant(
            creds.mchid, creds.appid, business_day or BusinessDay(SystemClock().tz)
        )
        self.keys = keys if keys is not None else PlatformKeys.from_credentials(creds)
        self._refresh = refresh
        self._refresh_lock = threading.Lock()
        self._throttle = RefreshThrottle(clock)
        self.journal = Journal(journal_path)
        self._lock = threading.Lock()
        self._address = (host, port)
        self._http: ThreadingHTTPServer | None = None
        self.accepted = 0
        self.refused = 0

    @property
    def url(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/wechatpay/notify"

    def start(self) -> None:
        self.journal.open()
        self._http = ThreadingHTTPServer(self._address, _handler(self))
        threading.Thread(target=self._http.serve_forever, name="notify-server", daemon=True).start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        self.journal.close()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """One notification in, (HTTP status, body) out."""
        try:
            note = self._open(headers, body)
        except NotificationError as exc:
            self.refused += 1
            log.warning("notification refused: %s", exc)
            return 400, json.dumps({"code": "FAIL", "message": str(exc)[:200]}).encode()
        stamp = datetime.fromtimestamp(self.clock(), self.merchant.business_day.tz)
        with self._lock:
            outcome = record(self.journal, note, now=stamp, merchant=self.merchant)
        self.accepted += 1
        log.info("notification %s %s: %s", note.id, note.event_type, outcome)
        return 204, b""

    def _open(self, headers: dict[str, str], body: bytes) -> Notification:
        try:
            return self._open_once(headers, body)
        except UnknownNotificationSigner as exc:
            if not (looks_like_certificate_serial(exc.serial) and self._learn(exc.serial)):
                raise
        return self._open_once(headers, body)

    def _open_once(self, headers: dict[str, str], body: bytes) -> Notification:
        return open_notification(
            headers,
            body,
            keys=self.keys.snapshot(),
            apiv3_key=self.creds.apiv3_key,
            now=self.clock(),
        )

    def _learn(self, serial: str) -> bool:
        """Whether certificate `serial` is known, refreshing if none was done for 60 s."""
        with self._refresh_lock:  # concurrent notifications wait for one download
            if serial in self.keys:
                return True
            if self._refresh is None or not self._throttle.allow():
                return False
            try:
                self._refresh()
            except PosError as exc:
                log.warning("platform certificates could not be loaded: %s", exc)
                return False
            return serial in self.keys


def _handler(server: NotifyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or 0)
            if length > MAX_NOTIFICATION_BYTES:
                self._reply(413, b'{"code":"FAIL","message":"too large"}')
                return
            body = self.rfile.read(length)
            try:
                status, answer = server.handle(dict(self.headers.items()), body)
            except Exception:  # one site per request: WeChat retries a 500, nothing is lost
                log.exception("notification could not be recorded")
                status, answer = 500, b'{"code":"FAIL","message":"internal error"}'
            self._reply(status, answer)

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("notify-server: " + format, *args)

    return Handler


def serve(
    creds: WeChatCredentials,
    journal_path: Path,
    host: str,
    port: int,
    *,
    wechat_hosts: Sequence[str] = (),
    business_day: BusinessDay | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; prints the URL to give WeChat as notify_url.

    With `wechat_hosts`, platform certificates are downloaded from there when needed.
    """
    keys = PlatformKeys.from_credentials(creds)
    refresh = certificate_refresh(creds, wechat_hosts, keys) if wechat_hosts else None
    server = NotifyServer(
        creds,
        journal_path,
        host=host,
        port=port,
        keys=keys,
        refresh=refresh,
        business_day=business_day,
    )
    server.start()
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    print(f"notify server at {server.url} (journal {journal_path})", flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


def certificate_refresh(
    creds: WeChatCredentials, hosts: Sequence[str], keys: PlatformKeys
) -> Callable[[], list[str]]:
    """A blocking `refresh` for NotifyServer: one short-lived client loads the certificates."""

    async def download() -> list[str]:
        async with WeChatPayClient(
            creds,
            base_urls=hosts,
            connect_timeout_s=REFRESH_TIMEOUT_S,
            read_timeout_s=REFRESH_TIMEOUT_S,
            keys=keys,
        ) as client:
            return await client.refresh_certificates()

    return lambda: asyncio.run(download())
