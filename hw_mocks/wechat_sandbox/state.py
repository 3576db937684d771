"""The sandbox's orders: idempotent create, payment scenarios, query, close, reverse, scans,
and refunds (whose rules are in refunds.py).

One lock guards everything (the HTTP server answers on several threads). Time comes from the
order clock; USERPAYING outcomes and expiries are applied lazily whenever an order is touched.
With a store, every request's changes are written in one SQLite transaction before it answers.
Just over ~400 lines: each endpoint is a thin locked entry point here; refund rules are apart.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hw_mocks.wechat_sandbox import refunds, schema
from hw_mocks.wechat_sandbox.clock import OrderClock
from hw_mocks.wechat_sandbox.orders import (
    AMOUNT_SCENARIOS,
    CST,
    Event,
    Order,
    Scenario,
    WalletCode,
    from_record,
    sandbox_view,
    to_record,
    transaction,
)
from hw_mocks.wechat_sandbox.schema import ApiError
from hw_mocks.wechat_sandbox.store import OrderStore

CODE_URL_LIFETIME_S = 2 * 3600  # reference §3.1: a code_url is payable for 2 h at most
ORDER_LIFETIME_S = 7 * 86400  # unpaid orders auto-close, reverse window (§3.1, §3.6)
WALLET_CODE_LIFETIME_S = 60.0  # a customer's payment code refreshes every minute (§5)


class OrderBook:
    """All orders of the one sandbox merchant, in memory and, with a store, on disk."""

    def __init__(
        self,
        *,
        appid: str,
        mchid: str,
        clock: Callable[[], float],
        userpaying_s: float,
        store: OrderStore | None = None,
        refund_interval_s: float = 60.0,
        refund_delay_s: float = 2.0,
        allow_loopback_notify: bool = False,
    ) -> None:
        """Load the store's orders, codes and clock offset when one is given;
        `allow_loopback_notify` takes http notify_urls on loopback (schema.check_notify_url).

        Raises:
            ValueError: the store holds records this version cannot read, or a refund
                interval or delay is negative.
        """
        self._appid, self._mchid = appid, mchid
        self._userpaying_s = userpaying_s
        self._allow_loopback_notify = allow_loopback_notify
        self._refunds = refunds.RefundDesk(interval_s=refund_interval_s, delay_s=refund_delay_s)
        self._store = store
        self._lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._by_code_url: dict[str, str] = {}
        self._by_transaction_id: dict[str, str] = {}
        self._wallet: dict[str, WalletCode] = {}
        self._used_codes: set[str] = set()
        self._saved: dict[str, str] = {}  # out_trade_no -> record as last written
        self._touched: set[str] = set()
        self._unsettled: set[str] = set()  # orders with an outcome or a refund still to come
        self._events: list[Event] = []
        # told of each request's events once its changes are written (the notifier listens)
        self.listener: Callable[[list[Event]], None] | None = None
        offset = 0.0
        if store is not None:
            offset = self._load(store)
        self.clock = OrderClock(clock, offset)

    # ------------------------------------------------------------ /v3 endpoints

    def create_native(self, body: dict[str, Any]) -> dict[str, Any]:
        schema.check(schema.NATIVE, body)
        schema.check_notify_url(body, allow_loopback=self._allow_loopback_notify)
        self._check_appid(body)
        with self._txn():
            now = self.clock()
            existing = self._reentry(body, "NATIVE", now)
            if existing is not None:
                if existing.state != "NOTPAY" or now >= (existing.expires_at or 0.0):
                    raise _state_error(existing, now)
                return {"code_url": existing.code_url}
            expires_at = now + CODE_URL_LIFETIME_S
            if "time_expire" in body:
                deadline = datetime.fromisoformat(body["time_expire"]).timestamp()
                if deadline <= now:
                    raise schema.param_error(
                        "/time_expire", body["time_expire"], "已过期 in the past"
                    )
                expires_at = min(expires_at, deadline)
            code_url = "weixin://wxpay/bizpayurl?pr=" + _random(
                string.ascii_letters + string.digits, 9
            )
            order = Order(
                body["out_trade_no"],
                "NATIVE",
                body,
                now,
                "NOTPAY",
                code_url=code_url,
                expires_at=expires_at,
            )
            self._orders[order.out_trade_no] = order
            self._touched.add(order.out_trade_no)
            self._by_code_url[code_url] = order.out_trade_no
            return {"code_url": code_url}

    def create_codepay(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """200 and the transaction, or 202 `{"trade_state": "USERPAYING"}`."""
        schema.check(schema.CODEPAY, body)
        self._check_appid(body)
        with self._txn():
            now = self.clock()
            order = self._reentry(body, "MICROPAY", now)
            if order is None:
                order = self._new_codepay(body, now)
            if order.first_error is not None:
                raise order.first_error
            if order.state == "SUCCESS":
                return 200, self._transaction(order)
            if order.state == "USERPAYING":
                return 202, {"trade_state": "USERPAYING"}
            raise _state_error(order, now)

    def query(self, out_trade_no: str) -> dict[str, Any]:
        with self._txn():
            return self._transaction(self._get(out_trade_no))

    def query_by_id(self, transaction_id: str) -> dict[str, Any]:
        with self._txn():
            out_trade_no = self._by_transaction_id.get(transaction_id)
            if out_trade_no is None:
                raise _not_exist()
            return self._transaction(self._get(out_trade_no))

    def close(self, out_trade_no: str, body: dict[str, Any]) -> None:
        schema.check(schema.CLOSE, body)
        with self._txn():
            order = self._orders.get(out_trade_no)
            if order is None:
                return  # closing an unknown number answers 204 too (reference §3.5)
            if order.trade_type == "MICROPAY":
                raise ApiError(
                    400,
                    "INVALID_REQUEST",
                    "当前交易不允许进行普通关单（只能撤销）",
                    schema.ID_REVERSE_ONLY,
                )
            self._advance(order, self.clock())
            if order.state == "SUCCESS":
                raise ApiError(400, "ORDER_PAID", "订单已支付", schema.ID_ORDER_PAID)
            order.state = "CLOSED"

    def reverse(
        self, out_trade_no: str, body: dict[str, Any], *, refuse_while_paying: bool = False
    ) -> dict[str, Any]:
        """Reverse a payment-code order. A USERPAYING order is reversed at once unless
        `refuse_while_paying` (a fault): then it answers 400 USER_PAYING "正在支付中不能发起撤销"
        as the real service may, and the terminal must ask again later."""
        schema.check(schema.REVERSE, body)
        self._check_appid(body)
        with self._txn():
            now = self.clock()
            order = self._get(out_trade_no)
            if order.trade_type != "MICROPAY":
                msg = "非付款码订单不能撤销，请关单或退款"
                raise ApiError(400, "INVALID_REQUEST", msg, schema.ID_TRADE_ERROR)
            if now - order.created_at > ORDER_LIFETIME_S:
                msg = "订单已超过撤销期限，请使用退款"
                raise ApiError(400, "REVERSE_EXPIRE", msg, schema.ID_EXPIRED)
            if order.refunds:
                msg = "订单已发生退款，不能撤销"
                raise ApiError(400, "INVALID_REQUEST", msg, schema.ID_TRADE_ERROR)
            self._advance(order, now)
            if refuse_while_paying and order.state == "USERPAYING":
                raise ApiError(400, "USER_PAYING", "正在支付中不能发起撤销", schema.ID_TRADE_ERROR)
            if order.state != "REVOKED":
                order.refunded = order.state == "SUCCESS"
                order.state, order.settle_at = "REVOKED", None
            return {"appid": self._appid, "mchid": self._mchid, "out_trade_no": out_trade_no}

    def create_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v3/refund/domestic/refunds (reference §3.7): the Refund object."""
        schema.check(schema.REFUND, body)
        schema.check_notify_url(body, allow_loopback=self._allow_loopback_notify)
        with self._txn():
            now = self.clock()
            return self._refunds.create(
                body,
                self._orders,
                self._by_transaction_id,
                lambda order: self._advance(order, now),
                now,
            )

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        with self._txn():
            found = refunds.find(self._orders.values(), out_refund_no)
            if found is None:
                raise refunds.not_exist()
            order, refund = found
            self._advance(order, self.clock())
            return refunds.refund_object(order, refund)

    # ------------------------------------------------------------ /sandbox control

    def issue_code(self, scenario: Scenario, delay_s: float | None) -> str:
        """A fresh payment code from the customer's wallet; it follows `scenario` at any amount."""
        with self._txn():
            while True:
                code = "13" + _random(string.digits, 16)
                if code not in self._wallet and code not in self._used_codes:
                    break
            self._wallet[code] = wallet = WalletCode(scenario, delay_s, self.clock())
            if self._store is not None:
                record = {
                    "scenario": scenario.value,
                    "delay_s": delay_s,
                    "issued_at": wallet.issued_at,
                }
                self._store.save_wallet_code(code, record)
            return code

    def scan(self, code_url: str) -> dict[str, Any]:
        """The customer scans a Native QR and pays."""
        with self._txn():
            out_trade_no = self._by_code_url.get(code_url)
            if out_trade_no is None:
                raise ApiError(404, "NOT_FOUND", "二维码无效 unknown code_url", schema.ID_NOT_EXIST)
            order = self._get(out_trade_no)
            now = self.clock()
            if order.state != "NOTPAY" or now >= (order.expires_at or 0.0):
                raise _state_error(order, now)
            self._pay(order, now)
            return {"out_trade_no": out_trade_no, "trade_state": order.state}

    def view(self, out_trade_no: str) -> dict[str, Any]:
        with self._txn():
            return sandbox_view(self._get(out_trade_no))

    def views(self) -> list[dict[str, Any]]:
        with self._txn():
            for order in self._orders.values():
                self._advance(order, self.clock())
            return [sandbox_view(order) for order in self._orders.values()]

    def sweep(self) -> None:
        """Apply due payment outcomes and refund endings now, not when an order is next asked
        about, so a refund ends (and is notified) even when nobody queries it."""
        with self._txn():
            now = self.clock()
            for out_trade_no in list(self._unsettled):
                self._advance(self._orders[out_trade_no], now)

    def locked(self) -> threading.Lock:
        """The book's lock, for closing the store while no request is half-way through it."""
        return self._lock

    def advance_clock(self, seconds: float) -> float:
        """Move the order clock forward; returns the total offset (kept on disk with a store).

        Raises:
            ValueError: `seconds` is negative.
        """
        with self._txn():
            offset = self.clock.advance(seconds)
            if self._store is not None:
                self._store.set_meta("clock_offset_s", repr(offset))
            return offset

    def reset(self) -> None:
        """Forget every order and payment code (the order clock keeps its offset)."""
        with self._txn():
            for table in (self._orders, self._by_code_url, self._by_transaction_id, self._wallet):
                table.clear()
            self._used_codes.clear()
            self._saved.clear()
            self._touched.clear()
            self._unsettled.clear()
            if self._store is not None:
                self._store.clear()

    # ------------------------------------------------------------ internals (lock held)

    def _check_appid(self, body: dict[str, Any]) -> None:
        if body.get("appid") != self._appid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配", schema.ID_PARAM)

    def _get(self, out_trade_no: str) -> Order:
        order = self._orders.get(out_trade_no)
        if order is None:
            raise _not_exist()
        self._advance(order, self.clock())
        return order

    def _reentry(self, body: dict[str, Any], trade_type: str, now: float) -> Order | None:
        """The existing order for an identical re-submission; errors for a mismatched one."""
        order = self._orders.get(body["out_trade_no"])
        if order is None:
            return None
        self._advance(order, now)
        if order.trade_type != trade_type:
            raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复", schema.ID_REENTRY)
        if order.request == body:
            return order
        if order.state in ("SUCCESS", "CLOSED", "REVOKED"):
            raise _state_error(order, now)
        raise ApiError(
            400, "INVALID_REQUEST", "请求重入时，参数与首次请求时不一致", schema.ID_REENTRY
        )

    def _new_codepay(self, body: dict[str, Any], now: float) -> Order:
        code = body["payer"]["auth_code"]
        if code in self._used_codes:
            raise ApiError(
                400,
                "INVALID_REQUEST",
                "101 每个二维码仅限使用一次，请刷新再试",
                schema.ID_CODE_USED,
            )
        self._used_codes.add(code)  # single use, also when the payment fails
        wallet = self._wallet.pop(code, None)
        if self._store is not None:
            self._store.add_used_code(code)
            self._store.drop_wallet_code(code)
        if wallet is not None and now - wallet.issued_at > WALLET_CODE_LIFETIME_S:
            raise ApiError(
                400, "INVALID_REQUEST", "101 付款码已过期，请退出重试", schema.ID_CODE_USED
            )
        amount = body["amount"]["total"]
        scenario = wallet.scenario if wallet else AMOUNT_SCENARIOS.get(amount, Scenario.PAID)
        delay = wallet.delay_s if wallet and wallet.delay_s is not None else self._userpaying_s
        order = Order(body["out_trade_no"], "MICROPAY", body, now, "USERPAYING", scenario=scenario)
        self._orders[order.out_trade_no] = order
        self._touched.add(order.out_trade_no)
        if scenario is Scenario.PAID:
            self._pay(order, now)
        elif scenario is Scenario.NOT_ENOUGH:
            order.state = "PAYERROR"
            order.first_error = ApiError(403, "NOT_ENOUGH", "用户余额不足", schema.ID_NOT_ENOUGH)
        elif scenario is not Scenario.USERPAYING_UNTIL_REVERSED:
            order.settle_at = now + delay
        return order

    def _advance(self, order: Order, now: float) -> None:
        self._touched.add(order.out_trade_no)  # written back if it changed by the end of the call
        if order.state == "USERPAYING" and order.settle_at is not None and now >= order.settle_at:
            settled_at, order.settle_at = order.settle_at, None
            if order.scenario is Scenario.USERPAYING_THEN_PAID:
                self._pay(order, settled_at)
            else:
                order.state = "PAYERROR"
        elif order.state == "NOTPAY" and now - order.created_at >= ORDER_LIFETIME_S:
            order.state = "CLOSED"
        for refund in refunds.settle(order, now):
            url = refund.request.get("notify_url")
            if url:
                notice = refunds.refund_notice(order, refund, self._mchid)
                self._events.append(Event(f"REFUND.{refund.status}", url, notice))

    def _pay(self, order: Order, now: float) -> None:
        order.state = "SUCCESS"
        order.transaction_id = "4200" + datetime.fromtimestamp(now, CST).strftime("%Y%m%d")
        order.transaction_id += _random(string.digits, 16)  # 28 digits, like the real ones
        order.success_time = datetime.fromtimestamp(now, CST).isoformat(timespec="seconds")
        order.payer_openid = "o" + _random(string.ascii_letters + string.digits + "_-", 27)
        self._by_transaction_id[order.transaction_id] = order.out_trade_no
        if order.trade_type == "NATIVE":  # payment-code orders are never notified (§3.8)
            url = order.request["notify_url"]
            self._events.append(Event("TRANSACTION.SUCCESS", url, self._transaction(order)))

    def _transaction(self, order: Order) -> dict[str, Any]:
        return transaction(order, self._appid, self._mchid)

    # ------------------------------------------------------------ persistence

    def _load(self, store: OrderStore) -> float:
        try:
            for record in store.orders():
                order = from_record(record)
                self._orders[order.out_trade_no] = order
                self._saved[order.out_trade_no] = json.dumps(record, ensure_ascii=False)
                if order.code_url is not None:
                    self._by_code_url[order.code_url] = order.out_trade_no
                if order.transaction_id is not None:
                    self._by_transaction_id[order.transaction_id] = order.out_trade_no
                if _unsettled(order):
                    self._unsettled.add(order.out_trade_no)
            self._used_codes = store.used_codes()
            for code, rec in store.wallet_codes().items():
                self._wallet[code] = WalletCode(
                    Scenario(rec["scenario"]), rec["delay_s"], rec["issued_at"]
                )
            return float(store.get_meta("clock_offset_s", "0"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{store.path}: unreadable sandbox record: {exc}") from exc

    @contextmanager
    def _txn(self) -> Iterator[None]:
        """The lock, and with a store one transaction holding every order the block touched;
        then the block's events go to the listener."""
        with self._lock:
            self._touched, self._events = set(), []
            try:
                if self._store is None:
                    yield
                else:
                    self._store.begin()
                    try:
                        yield
                    finally:
                        self._write(self._store)
            finally:
                for out_trade_no in self._touched & self._orders.keys():
                    if _unsettled(self._orders[out_trade_no]):
                        self._unsettled.add(out_trade_no)
                    else:
                        self._unsettled.discard(out_trade_no)
                if self._events and self.listener is not None:
                    self.listener(self._events)

    def _write(self, store: OrderStore) -> None:
        for out_trade_no in self._touched:
            record = json.dumps(to_record(self._orders[out_trade_no]), ensure_ascii=False)
            if self._saved.get(out_trade_no) != record:
                store.save_order(out_trade_no, record)
                self._saved[out_trade_no] = record
        store.commit()


def _unsettled(order: Order) -> bool:
    """Whether time alone will still change the order: a USERPAYING outcome or a refund due."""
    return order.settle_at is not None or any(r.status == "PROCESSING" for r in order.refunds)


def _state_error(order: Order, now: float) -> ApiError:
    """Why an order in its current state refuses a payment or a re-submission."""
    if order.state == "SUCCESS":
        return ApiError(400, "ORDER_PAID", "订单已支付", schema.ID_ORDER_PAID)
    if order.state == "REVOKED":
        return ApiError(400, "ORDER_CLOSED", "订单已撤销，请重新下单", schema.ID_ORDER_CLOSED)
    if order.state == "CLOSED":
        return ApiError(400, "ORDER_CLOSED", "订单已关闭", schema.ID_ORDER_CLOSED)
    if order.state == "PAYERROR":
        return ApiError(403, "TRADE_ERROR", "支付失败，请撤销订单", schema.ID_TRADE_ERROR)
    if order.expires_at is not None and now >= order.expires_at:
        return ApiError(400, "ORDER_EXPIRED", "订单已过期", schema.ID_EXPIRED)
    return ApiError(400, "INVALID_REQUEST", f"订单状态 {order.state} 不允许此操作", schema.ID_PARAM)


def _not_exist() -> ApiError:
    return ApiError(404, "ORDER_NOT_EXIST", "订单不存在", schema.ID_NOT_EXIST)


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))
