"""A local WeChat Pay APIv3 server (public-key mode) on loopback, for laptops and tests.

Endpoints, signed and verified like api.mch.weixin.qq.com (reference wechatpay-v3.md §0-§5):

    POST /v3/pay/transactions/native                       200 {"code_url"}; honours time_expire
    POST /v3/pay/transactions/codepay                      200 transaction | 202 USERPAYING | 4xx
    GET  /v3/pay/transactions/out-trade-no/{n}?mchid=      200 transaction | 404 ORDER_NOT_EXIST
    GET  /v3/pay/transactions/id/{transaction_id}?mchid=   only once paid (28-digit ids)
    POST /v3/pay/transactions/out-trade-no/{n}/close       204, idempotent; paid/codepay → 400
    POST /v3/pay/transactions/out-trade-no/{n}/reverse     200; codepay only; order ends REVOKED

Payment-code magic amounts (`amount.total`, in fen), for codes not issued by the wallet below:

    4001   202 USERPAYING, then SUCCESS after `userpaying_s` seconds (constructor, default 3)
    4002   202 USERPAYING until reversed
    4003   403 NOT_ENOUGH (order left PAYERROR)
    4004   202 USERPAYING, then PAYERROR after `userpaying_s` seconds
    other  200 SUCCESS at once

Every auth_code (`^1[0-5]\\d{16}$`) is single-use, also after a failure: a reused one gets
400 INVALID_REQUEST "101 每个二维码仅限使用一次，请刷新再试". Same out_trade_no with an
identical body replays the first result; a different body gets 400 INVALID_REQUEST
(ORDERPAID / ORDER_CLOSED when the order is final; 403 OUT_TRADE_NO_USED across trade types).
Deliberate difference from the real service: reversing a USERPAYING order succeeds at once
(WeChat may answer USERPAYING and ask to retry); that is what a terminal does at its deadline.

Control endpoints, sandbox-only and unsigned (nothing like them exists at WeChat):

    POST /sandbox/payment-codes {"scenario": S, "delay_s": number?}   → {"auth_code": "<18 digits>"}
         S = paid | userpaying_then_paid | userpaying_until_reversed | not_enough | payerror;
         the code follows S whatever the amount; delay_s defaults to userpaying_s; valid 60 s
    POST /sandbox/scan {"code_url": "..."}   the customer scans a Native QR and pays → 200
         {"out_trade_no", "trade_state": "SUCCESS"}; 400 when closed, expired or already paid
    GET  /sandbox/orders, GET /sandbox/orders/{out_trade_no}   the sandbox's own view of orders
    GET|POST /sandbox/faults {"sign_responses": bool, "tamper_body": bool, "delay_s": number,
         "drop_connection": bool, "system_error_after_commit": bool}   see `Faults`; POST resets
         any option it does not name

State dir: keys and `merchant.json` (see keys.py), created on first start and reused; orders live
in memory only. All times (signatures, USERPAYING delays, expiry) come from the injected clock.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self, TextIO

from hw_mocks.wechat_sandbox.keys import MERCHANT_JSON, SandboxStateError, load_or_create
from hw_mocks.wechat_sandbox.server import Faults, SandboxApp, SandboxHTTPServer
from hw_mocks.wechat_sandbox.state import AMOUNT_SCENARIOS, OrderBook, Scenario

__all__ = [
    "AMOUNT_SCENARIOS",
    "Faults",
    "ManualClock",
    "SandboxStateError",
    "Scenario",
    "WeChatSandbox",
    "serve_forever",
]


class ManualClock:
    """A clock that moves only when told to: `clock()` returns Unix seconds."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WeChatSandbox:
    """The sandbox server; `start()` binds and serves on a daemon thread, `stop()` ends it."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        userpaying_s: float = 3.0,
    ) -> None:
        self._state_dir = state_dir
        self._host, self._requested_port = host, port
        self._clock = clock
        self._userpaying_s = userpaying_s
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load or create the merchant keys, bind and serve.

        Raises:
            SandboxStateError: the state dir is incomplete or unreadable.
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        keys = load_or_create(self._state_dir)
        book = OrderBook(
            appid=keys.appid, mchid=keys.mchid, clock=self._clock, userpaying_s=self._userpaying_s
        )
        server = SandboxHTTPServer(
            (self._host, self._requested_port), SandboxApp(keys, book, self._clock)
        )
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="wechat-sandbox",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; answers held back by a delay fault are released."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_faults(self, faults: Faults) -> None:
        """Switch fault behaviour for the following /v3 answers (`Faults()` restores normal)."""
        self._running().app.faults = faults

    @property
    def port(self) -> int:
        return int(self._running().server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def merchant_json(self) -> Path:
        return self._state_dir / MERCHANT_JSON

    def _running(self) -> SandboxHTTPServer:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self._server


def serve_forever(
    port: int,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    userpaying_s: float = 3.0,
    out: TextIO = sys.stdout,
) -> int:
    """Run the sandbox in the foreground until SIGINT/SIGTERM (for `pos-terminal sandbox`).

    Returns the process exit code: 0 after a signal, 1 when the sandbox cannot start.
    """
    sandbox = WeChatSandbox(state_dir, host=host, port=port, userpaying_s=userpaying_s)
    try:
        sandbox.start()
    except (SandboxStateError, OSError) as exc:
        print(f"wechat sandbox: cannot start on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(
            f"WeChat Pay sandbox at {sandbox.base_url} merchant file {sandbox.merchant_json}",
            file=out,
        )
        out.flush()
        while not done.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    return 0
