"""`pos-terminal notify-server`: receives WeChat Pay notifications on a store server.

For a store server with a public address (a terminal behind NAT polls instead). Each POST is
verified, decrypted and recorded into the journal before it is answered — well within WeChat's
5 s — with 204 on success and 4xx `{"code": "FAIL"}` when refused, so WeChat retries.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from pos_terminal.journal import Journal
from pos_terminal.payments.wechat import WeChatCredentials
from pos_terminal.payments.wechat_notify import (
    MAX_NOTIFICATION_BYTES,
    NotificationError,
    open_notification,
    record,
)

log = logging.getLogger(__name__)


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
    ) -> None:
        self.creds = creds
        self.clock = clock
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
            note = open_notification(headers, body, creds=self.creds, now=self.clock())
        except NotificationError as exc:
            self.refused += 1
            log.warning("notification refused: %s", exc)
            return 400, json.dumps({"code": "FAIL", "message": str(exc)[:200]}).encode()
        stamp = datetime.fromtimestamp(self.clock()).astimezone()
        with self._lock:
            outcome = record(self.journal, note, now=stamp)
        self.accepted += 1
        log.info("notification %s %s: %s", note.id, note.event_type, outcome)
        return 204, b""


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


def serve(creds: WeChatCredentials, journal_path: Path, host: str, port: int) -> int:
    """Run until SIGINT/SIGTERM; prints the URL to give WeChat as notify_url."""
    server = NotifyServer(creds, journal_path, host=host, port=port)
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
