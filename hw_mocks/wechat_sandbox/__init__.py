"""A local WeChat Pay APIv3 server on loopback, for laptops and tests.

Endpoints, signed and verified like api.mch.weixin.qq.com (reference wechatpay-v3.md §0-§5):

    GET  /v3/certificates                                  200 {"data": [sealed cert]} (§1.4);
                                                           404 RESOURCE_NOT_EXISTS without cert mode
    POST /v3/pay/transactions/native                       200 {"code_url"}; honours time_expire
    POST /v3/pay/transactions/codepay                      200 transaction | 202 USERPAYING | 4xx
    GET  /v3/pay/transactions/out-trade-no/{n}?mchid=      200 transaction | 404 ORDER_NOT_EXIST
    GET  /v3/pay/transactions/id/{transaction_id}?mchid=   only once paid (28-digit ids)
    POST /v3/pay/transactions/out-trade-no/{n}/close       204, idempotent; paid/codepay → 400
    POST /v3/pay/transactions/out-trade-no/{n}/reverse     200; codepay only; order ends REVOKED;
                                                           400 once the order has a refund
    POST /v3/refund/domestic/refunds                       200 Refund (status PROCESSING) | 4xx
    GET  /v3/refund/domestic/refunds/{out_refund_no}       200 Refund | 404 RESOURCE_NOT_EXISTS

Key modes (§1.2, §1.4). The merchant has the constructor's `key_modes`, or else those listed in
merchant.json `key_modes` ("public_key", "certificate"); a new merchant has ["public_key"], as
every merchant opened since late 2024. ["public_key", "certificate"] is a merchant part-way
through the switch: answers are signed with the key the request's `Wechatpay-Serial` names, the
PUB_KEY_ID giving the WeChat Pay public key (`Wechatpay-Serial: PUB_KEY_ID_…`), the certificate
serial, any other value or no header the platform certificate (40-hex serial); merchant.json then
also names the certificate (`platform_certificate`, `platform_certificate_serial`, see keys.py).
A merchant with one mode always gets that one. The modes in effect are written to merchant.json.

Payment-code magic amounts (`amount.total`, in fen), for codes not issued by the wallet below:

    4001   202 USERPAYING, then SUCCESS after `userpaying_s` seconds (constructor, default 3)
    4002   202 USERPAYING until reversed
    4003   403 NOT_ENOUGH (order left PAYERROR)
    4004   202 USERPAYING, then PAYERROR after `userpaying_s` seconds
    other  200 SUCCESS at once

Refunds (reference §3.7, §5; rules in refunds.py). The body names the order by `out_trade_no`
or `transaction_id` (both: they must agree); `amount.total` must be the order total. The optional
`funds_account` ("AVAILABLE"), `goods_detail` and `amount.from` are taken, the accounts of
`from` adding up to `amount.refund` (else 400 PARAM_ERROR) and echoed in the answer. A refund
needs a paid order (SUCCESS or REFUND; else 400 INVALID_REQUEST, also for CLOSED/REVOKED), paid
≤ 365 days ago; the refunds not CLOSED may not sum past the paid total (400 INVALID_REQUEST
"申请退款金额超过订单可退金额"); at most 50 per order; a new refund of an order within
`refund_interval_s` (constructor, default 60) of its last one gets 429 FREQUENCY_LIMITED and is
not created. The same out_refund_no with an identical body returns the same refund (never a
second one), with a different body 400 INVALID_REQUEST. Once an order has a refund its
trade_state reads REFUND. A refund is PROCESSING for `refund_delay_s` (constructor, default 2)
of order time, then ends by its amount (`amount.refund`, in fen):

    4005   ABNORMAL (e.g. the payer's account is frozen)
    4006   CLOSED (counts no more against the paid total; a new refund needs a new number)
    4007   403 NOT_ENOUGH at create (merchant balance short); no refund is created
    other  SUCCESS, with success_time

Every auth_code (`^1[0-5]\\d{16}$`) is single-use, also after a failure: a reused one gets
400 INVALID_REQUEST "101 每个二维码仅限使用一次，请刷新再试". Same out_trade_no with an
identical body replays the first result; a different body gets 400 INVALID_REQUEST
(ORDER_PAID / ORDER_CLOSED when the order is final; 403 OUT_TRADE_NO_USED across trade types).
Bodies with unknown fields, nulls or a character beyond U+FFFF (4 bytes in UTF-8, e.g. an emoji;
v3 text takes 1–3-byte characters only) get 400 PARAM_ERROR with detail{field, value, issue,
location}.
A `notify_url` (Native orders, refunds) must be https to a public host, as at WeChat: plain
http, localhost, loopback, RFC 1918, link-local and other non-global addresses get 400
PARAM_ERROR (host names are not resolved). For local tests `allow_loopback_notify=True`
(`pos-terminal sandbox --allow-loopback-notify`) takes http or https to localhost, 127.0.0.0/8
and ::1; other private addresses stay refused.
Reversing a USERPAYING order succeeds at once by default (what a terminal wants at its deadline);
the fault `reverse_refused_while_paying` answers it as WeChat may, 400 USER_PAYING
"正在支付中不能发起撤销", and the terminal asks again later.

Error spelling (§4.3): `error_style="underscore"` (default) answers SYSTEM_ERROR, NOT_ENOUGH,
ORDER_NOT_EXIST, ORDER_PAID, ORDER_CLOSED, BANK_ERROR…; `"legacy"` answers SYSTEMERROR,
NOTENOUGH, ORDERNOTEXIST, ORDERPAID, ORDERCLOSED, BANKERROR… (table: schema.LEGACY_CODES).

Control endpoints, sandbox-only and unsigned (nothing like them exists at WeChat):

    POST /sandbox/payment-codes {"scenario": S, "delay_s": number?}   → {"auth_code": "<18 digits>"}
         S = paid | userpaying_then_paid | userpaying_until_reversed | not_enough | payerror;
         the code follows S whatever the amount; delay_s defaults to userpaying_s; valid 60 s
    POST /sandbox/scan {"code_url": "..."}   the customer scans a Native QR and pays → 200
         {"out_trade_no", "trade_state": "SUCCESS"}; 400 when closed, expired or already paid
    GET  /sandbox/orders, GET /sandbox/orders/{out_trade_no}   the sandbox's own view of orders,
         each with a `refunds` list {out_refund_no, refund_id, refund_fen, status, outcome,
         created_at, settle_at}
    GET|POST /sandbox/faults {"sign_responses": bool, "tamper_body": bool, "delay_s": number,
         "hold_s": number, "drop_connection": bool, "system_error_after_commit": bool,
         "rate_limited": bool, "reverse_refused_while_paying": bool, "answer_amount_fen": int}
         global faults, see `Faults`; POST resets any option it does not name
    POST /sandbox/faults/next {"method": "GET"|"POST"|"*", "path": "/v3/…", <Faults options>}
         queue a one-shot fault: the first later /v3 request whose method matches ("*", the
         default, matches any) and whose path (no query) starts with `path` — `*` in it matches
         any run of characters, e.g. "/v3/pay/transactions/out-trade-no/*/close" — is answered
         with these faults instead of the global ones; e.g. {"path":
         "/v3/pay/transactions/codepay", "delay_s": 3}, {"method": "GET", "path":
         "/v3/pay/transactions/out-trade-no/", "system_error_after_commit": true},
         {"path": "/v3/pay/transactions/out-trade-no/*/close", "drop_connection": true},
         {"path": "/v3/pay/transactions/native", "rate_limited": true}. → {"pending": [...]}
    GET  /sandbox/faults/next → {"pending": [...]};  DELETE /sandbox/faults/next empties the queue
    GET|POST /sandbox/clock {"advance_s": seconds ≥ 0} → {"now", "offset_s"}: moves the order
         clock (USERPAYING outcomes, wallet-code expiry, code_url/time_expire, 7-day close and
         reverse windows, refund delay, interval and 1-year window, success_time) ahead of the
         injected clock; signatures and the 5-minute request skew check keep the injected
         clock, so a terminal in another process still talks to it. The offset only grows,
         and persists with the orders.
    GET  /sandbox/notifications → {"enabled", "notifications": [{id, event_type, url, subject,
         state (pending, delivered, given_up), failures, attempts: [{kind (delivery, probe,
         duplicate), serial, status, error, at}]}]}: the outbox (see notify.py)
    POST /sandbox/reset   forget all orders, payment codes, queued one-shot faults and the
         notification outbox

Python equivalents on `WeChatSandbox`: set_faults, fault_next, clear_next_faults, pending_faults,
advance_clock, reset, notifications.

Notifications (notify.py): with `notify=NotifySettings(...)` the sandbox posts signed, encrypted
TRANSACTION.SUCCESS (Native orders) and REFUND.* notifications to the notify_url of the request,
on WeChat's retry schedule (compressible), with optional duplicates, SIGNTEST probes and a gray
share signed by the other key. Without it nothing is posted and orders settle lazily.

State dir: keys, platform certificate and `merchant.json` (see keys.py), created on first start
and reused. With `persist=True` (the default of `serve_forever`, not of the constructor) orders
with their refunds, used payment codes, issued wallet codes and the clock offset live in
`orders.sqlite` there (WAL; see store.py), written before each answer: a new sandbox on the
same state dir carries on where the last one stopped or was killed. Without it orders live in
memory only and the file is left alone. All times (signatures, USERPAYING delays, expiry)
come from the injected clock.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self, TextIO

from hw_mocks.wechat_sandbox.clock import ManualClock
from hw_mocks.wechat_sandbox.faults import Faults, NextFault
from hw_mocks.wechat_sandbox.keys import (
    KEY_MODES,
    MERCHANT_JSON,
    SandboxStateError,
    check_key_modes,
    load_or_create,
)
from hw_mocks.wechat_sandbox.notify import Notifier, NotifySettings
from hw_mocks.wechat_sandbox.orders import AMOUNT_SCENARIOS, Scenario
from hw_mocks.wechat_sandbox.schema import ERROR_STYLES
from hw_mocks.wechat_sandbox.server import SandboxApp, SandboxHTTPServer
from hw_mocks.wechat_sandbox.state import OrderBook
from hw_mocks.wechat_sandbox.store import ORDERS_DB, OrderStore

__all__ = [
    "AMOUNT_SCENARIOS",
    "ERROR_STYLES",
    "KEY_MODES",
    "Faults",
    "ManualClock",
    "NextFault",
    "NotifySettings",
    "SandboxStateError",
    "Scenario",
    "WeChatSandbox",
    "serve_forever",
]


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
        key_modes: Iterable[str] | None = None,
        error_style: str = "underscore",
        persist: bool = False,
        refund_interval_s: float = 60.0,
        refund_delay_s: float = 2.0,
        notify: NotifySettings | None = None,
        allow_loopback_notify: bool = False,
    ) -> None:
        """`key_modes` None takes merchant.json's (others are written there at start); `persist`
        keeps orders in the state dir; `notify` turns notifications on (see notify.py);
        `allow_loopback_notify` takes notify_urls on loopback, also over http (local tests).

        Raises:
            ValueError: an unknown key mode or error style, a negative refund interval or delay.
        """
        if error_style not in ERROR_STYLES:
            raise ValueError(f"error_style must be one of {ERROR_STYLES}, got {error_style!r}")
        if refund_interval_s < 0 or refund_delay_s < 0:
            raise ValueError("refund_interval_s and refund_delay_s must be ≥ 0")
        self._refund_interval_s, self._refund_delay_s = refund_interval_s, refund_delay_s
        self._state_dir = state_dir
        self._host, self._requested_port = host, port
        self._clock = clock
        self._userpaying_s = userpaying_s
        self._key_modes = None if key_modes is None else check_key_modes(key_modes)
        self._error_style = error_style
        self._persist = persist
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: OrderStore | None = None
        self._notify = notify
        self._notifier: Notifier | None = None
        self._allow_loopback_notify = allow_loopback_notify

    def start(self) -> None:
        """Load or create the merchant keys (and with `persist` the orders), bind and serve.

        Raises:
            SandboxStateError: the state dir or its orders database is incomplete or unreadable.
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        keys = load_or_create(self._state_dir, self._key_modes)
        store = self._open_store() if self._persist else None
        try:
            book = OrderBook(
                appid=keys.appid,
                mchid=keys.mchid,
                clock=self._clock,
                userpaying_s=self._userpaying_s,
                store=store,
                refund_interval_s=self._refund_interval_s,
                refund_delay_s=self._refund_delay_s,
                allow_loopback_notify=self._allow_loopback_notify,
            )
            app = SandboxApp(keys, book, self._clock, error_style=self._error_style)
            server = SandboxHTTPServer((self._host, self._requested_port), app)
        except (ValueError, OSError) as exc:
            if store is not None:
                store.close()
            if isinstance(exc, ValueError):
                raise SandboxStateError(str(exc)) from exc
            raise
        self._store = store
        if self._notify is not None:
            self._notifier = app.notifier = Notifier(keys, book, self._clock, self._notify)
            self._notifier.start()
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
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.stop()
        store, self._store = self._store, None
        if store is not None:
            with server.app.book.locked():  # no handler thread is half-way through a write
                store.close()

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

    def fault_next(self, method: str, path: str, faults: Faults) -> None:
        """Queue a one-shot fault for the next /v3 request matching `method` ("*" = any) and
        path prefix `path` (`*` wildcards allowed); see POST /sandbox/faults/next."""
        if method not in ("*", "GET", "POST") or not path.startswith("/v3/"):
            raise ValueError(f"need method GET, POST or * and a /v3/ path, got {method} {path}")
        self._running().app.next_faults.add(NextFault(method, path, faults))

    def pending_faults(self) -> list[NextFault]:
        """One-shot faults not used yet, in queue order."""
        return self._running().app.next_faults.pending()

    def clear_next_faults(self) -> None:
        self._running().app.next_faults.clear()

    def advance_clock(self, seconds: float) -> float:
        """Move the order clock forward (see POST /sandbox/clock); returns the total offset."""
        return self._running().app.book.advance_clock(seconds)

    def reset(self) -> None:
        """Forget all orders, payment codes, queued one-shot faults and notifications."""
        self._running().app.reset()

    def notifications(self) -> list[dict[str, Any]]:
        """The outbox with every attempt (see GET /sandbox/notifications); [] when off."""
        notifier = self._running().app.notifier
        return [] if notifier is None else notifier.views()

    @property
    def port(self) -> int:
        return int(self._running().server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def merchant_json(self) -> Path:
        return self._state_dir / MERCHANT_JSON

    def _open_store(self) -> OrderStore:
        path = self._state_dir / ORDERS_DB
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            return OrderStore(path)
        except sqlite3.Error as exc:
            raise SandboxStateError(
                f"{path}: cannot open the sandbox orders database: {exc}; "
                "delete it to start with no orders"
            ) from exc

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
    persist: bool = True,
    error_style: str = "underscore",
    key_modes: Iterable[str] | None = None,
    notify: NotifySettings | None = None,
    allow_loopback_notify: bool = False,
) -> int:
    """Run the sandbox in the foreground until SIGINT/SIGTERM (for `pos-terminal sandbox`).

    Orders persist in the state dir unless `persist=False`.
    Returns the process exit code: 0 after a signal, 1 when the sandbox cannot start.
    """
    sandbox = WeChatSandbox(
        state_dir,
        host=host,
        port=port,
        userpaying_s=userpaying_s,
        persist=persist,
        error_style=error_style,
        key_modes=key_modes,
        notify=notify,
        allow_loopback_notify=allow_loopback_notify,
    )
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
