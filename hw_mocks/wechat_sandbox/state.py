"""The sandbox's orders: idempotent create, payment scenarios, query, close, reverse, scans.

One lock guards everything (the HTTP server answers on several threads). Time comes from the
injected clock; USERPAYING outcomes and expiries are applied lazily whenever an order is touched.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from hw_mocks.wechat_sandbox import schema
from hw_mocks.wechat_sandbox.schema import ApiError

CST = timezone(timedelta(hours=8), "CST")
CODE_URL_LIFETIME_S = 2 * 3600  # reference §3.1: a code_url is payable for 2 h at most
ORDER_LIFETIME_S = 7 * 86400  # unpaid orders auto-close, reverse window (§3.1, §3.6)
WALLET_CODE_LIFETIME_S = 60.0  # a customer's payment code refreshes every minute (§5)


class Scenario(StrEnum):
    """What the customer's wallet does with a payment code."""

    PAID = "paid"
    USERPAYING_THEN_PAID = "userpaying_then_paid"
    USERPAYING_UNTIL_REVERSED = "userpaying_until_reversed"
    NOT_ENOUGH = "not_enough"
    PAYERROR = "payerror"  # USERPAYING first, then PAYERROR


AMOUNT_SCENARIOS = {
    4001: Scenario.USERPAYING_THEN_PAID,
    4002: Scenario.USERPAYING_UNTIL_REVERSED,
    4003: Scenario.NOT_ENOUGH,
    4004: Scenario.PAYERROR,
}

STATE_DESC = {
    "SUCCESS": "支付成功",
    "NOTPAY": "订单未支付",
    "USERPAYING": "需要用户输入支付密码",
    "CLOSED": "订单已关闭",
    "REVOKED": "订单已撤销",
    "PAYERROR": "支付失败，请撤销订单",
}


@dataclass
class _Order:
    out_trade_no: str
    trade_type: str  # NATIVE or MICROPAY
    request: dict[str, Any]  # the first body received, for the re-entry rule
    created_at: float
    state: str
    scenario: Scenario | None = None
    code_url: str | None = None
    expires_at: float | None = None  # Native: end of payability
    settle_at: float | None = None  # USERPAYING resolves at this time
    transaction_id: str | None = None
    success_time: str | None = None
    payer_openid: str | None = None
    refunded: bool = False  # reversed after payment: the money went back
    first_error: ApiError | None = None  # replayed for an identical re-submission


@dataclass(frozen=True)
class _WalletCode:
    scenario: Scenario
    delay_s: float | None
    issued_at: float


class OrderBook:
    """All orders of the one sandbox merchant, in memory."""

    def __init__(self, *, appid: str, mchid: str, clock: Callable[[], float], userpaying_s: float):
        self._appid, self._mchid = appid, mchid
        self._clock = clock
        self._userpaying_s = userpaying_s
        self._lock = threading.Lock()
        self._orders: dict[str, _Order] = {}
        self._by_code_url: dict[str, str] = {}
        self._by_transaction_id: dict[str, str] = {}
        self._wallet: dict[str, _WalletCode] = {}
        self._used_codes: set[str] = set()

    # ------------------------------------------------------------ /v3 endpoints

    def create_native(self, body: dict[str, Any]) -> dict[str, Any]:
        schema.check(schema.NATIVE, body)
        self._check_appid(body)
        with self._lock:
            now = self._clock()
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
            order = _Order(
                body["out_trade_no"],
                "NATIVE",
                body,
                now,
                "NOTPAY",
                code_url=code_url,
                expires_at=expires_at,
            )
            self._orders[order.out_trade_no] = order
            self._by_code_url[code_url] = order.out_trade_no
            return {"code_url": code_url}

    def create_codepay(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """200 and the transaction, or 202 `{"trade_state": "USERPAYING"}`."""
        schema.check(schema.CODEPAY, body)
        self._check_appid(body)
        with self._lock:
            now = self._clock()
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
        with self._lock:
            return self._transaction(self._get(out_trade_no))

    def query_by_id(self, transaction_id: str) -> dict[str, Any]:
        with self._lock:
            out_trade_no = self._by_transaction_id.get(transaction_id)
            if out_trade_no is None:
                raise _not_exist()
            return self._transaction(self._get(out_trade_no))

    def close(self, out_trade_no: str, body: dict[str, Any]) -> None:
        schema.check(schema.CLOSE, body)
        with self._lock:
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
            self._advance(order, self._clock())
            if order.state == "SUCCESS":
                raise ApiError(400, "ORDERPAID", "订单已支付", schema.ID_ORDER_PAID)
            order.state = "CLOSED"

    def reverse(self, out_trade_no: str, body: dict[str, Any]) -> dict[str, Any]:
        """Reverse a payment-code order. Unlike the real service (which may answer USERPAYING
        "正在支付中不能发起撤销"), a USERPAYING order is reversed at once: that is what a
        terminal does at its deadline, and it keeps tests short."""
        schema.check(schema.REVERSE, body)
        self._check_appid(body)
        with self._lock:
            now = self._clock()
            order = self._get(out_trade_no)
            if order.trade_type != "MICROPAY":
                msg = "非付款码订单不能撤销，请关单或退款"
                raise ApiError(400, "INVALID_REQUEST", msg, schema.ID_TRADE_ERROR)
            if now - order.created_at > ORDER_LIFETIME_S:
                msg = "订单已超过撤销期限，请使用退款"
                raise ApiError(400, "REVERSE_EXPIRE", msg, schema.ID_EXPIRED)
            if order.state != "REVOKED":
                order.refunded = order.state == "SUCCESS"
                order.state, order.settle_at = "REVOKED", None
            return {"appid": self._appid, "mchid": self._mchid, "out_trade_no": out_trade_no}

    # ------------------------------------------------------------ /sandbox control

    def issue_code(self, scenario: Scenario, delay_s: float | None) -> str:
        """A fresh payment code from the customer's wallet; it follows `scenario` at any amount."""
        with self._lock:
            while True:
                code = "13" + _random(string.digits, 16)
                if code not in self._wallet and code not in self._used_codes:
                    break
            self._wallet[code] = _WalletCode(scenario, delay_s, self._clock())
            return code

    def scan(self, code_url: str) -> dict[str, Any]:
        """The customer scans a Native QR and pays."""
        with self._lock:
            out_trade_no = self._by_code_url.get(code_url)
            if out_trade_no is None:
                raise ApiError(404, "NOT_FOUND", "二维码无效 unknown code_url", schema.ID_NOT_EXIST)
            order = self._get(out_trade_no)
            now = self._clock()
            if order.state != "NOTPAY" or now >= (order.expires_at or 0.0):
                raise _state_error(order, now)
            self._pay(order, now)
            return {"out_trade_no": out_trade_no, "trade_state": order.state}

    def view(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            return _sandbox_view(self._get(out_trade_no))

    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            for order in self._orders.values():
                self._advance(order, self._clock())
            return [_sandbox_view(order) for order in self._orders.values()]

    # ------------------------------------------------------------ internals (lock held)

    def _check_appid(self, body: dict[str, Any]) -> None:
        if body.get("appid") != self._appid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配", schema.ID_PARAM)

    def _get(self, out_trade_no: str) -> _Order:
        order = self._orders.get(out_trade_no)
        if order is None:
            raise _not_exist()
        self._advance(order, self._clock())
        return order

    def _reentry(self, body: dict[str, Any], trade_type: str, now: float) -> _Order | None:
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

    def _new_codepay(self, body: dict[str, Any], now: float) -> _Order:
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
        if wallet is not None and now - wallet.issued_at > WALLET_CODE_LIFETIME_S:
            raise ApiError(
                400, "INVALID_REQUEST", "101 付款码已过期，请退出重试", schema.ID_CODE_USED
            )
        amount = body["amount"]["total"]
        scenario = wallet.scenario if wallet else AMOUNT_SCENARIOS.get(amount, Scenario.PAID)
        delay = wallet.delay_s if wallet and wallet.delay_s is not None else self._userpaying_s
        order = _Order(body["out_trade_no"], "MICROPAY", body, now, "USERPAYING", scenario=scenario)
        self._orders[order.out_trade_no] = order
        if scenario is Scenario.PAID:
            self._pay(order, now)
        elif scenario is Scenario.NOT_ENOUGH:
            order.state = "PAYERROR"
            order.first_error = ApiError(403, "NOT_ENOUGH", "用户余额不足", schema.ID_NOT_ENOUGH)
        elif scenario is not Scenario.USERPAYING_UNTIL_REVERSED:
            order.settle_at = now + delay
        return order

    def _advance(self, order: _Order, now: float) -> None:
        if order.state == "USERPAYING" and order.settle_at is not None and now >= order.settle_at:
            settled_at, order.settle_at = order.settle_at, None
            if order.scenario is Scenario.USERPAYING_THEN_PAID:
                self._pay(order, settled_at)
            else:
                order.state = "PAYERROR"
        elif order.state == "NOTPAY" and now - order.created_at >= ORDER_LIFETIME_S:
            order.state = "CLOSED"

    def _pay(self, order: _Order, now: float) -> None:
        order.state = "SUCCESS"
        order.transaction_id = "4200" + datetime.fromtimestamp(now, CST).strftime("%Y%m%d")
        order.transaction_id += _random(string.digits, 16)  # 28 digits, like the real ones
        order.success_time = datetime.fromtimestamp(now, CST).isoformat(timespec="seconds")
        order.payer_openid = "o" + _random(string.ascii_letters + string.digits + "_-", 27)
        self._by_transaction_id[order.transaction_id] = order.out_trade_no

    def _transaction(self, order: _Order) -> dict[str, Any]:
        """The "Transaction" object (§3.4); unpaid orders omit payer, id and success_time."""
        req = order.request
        out: dict[str, Any] = {
            "appid": self._appid,
            "mchid": self._mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type,
            "trade_state": order.state,
            "trade_state_desc": STATE_DESC.get(order.state, order.state),
            "amount": {"total": req["amount"]["total"], "currency": "CNY"},
        }
        if "attach" in req:
            out["attach"] = req["attach"]
        if order.transaction_id is not None:
            out["transaction_id"] = order.transaction_id
            out["bank_type"] = "OTHERS"
            out["success_time"] = order.success_time
            out["payer"] = {"openid": order.payer_openid}
            out["amount"].update(payer_total=req["amount"]["total"], payer_currency="CNY")
        device_id = req.get("scene_info", {}).get("device_id")
        if device_id is not None:
            out["scene_info"] = {"device_id": device_id}
        return out


def _sandbox_view(order: _Order) -> dict[str, Any]:
    """The sandbox's own view of an order, for tests and people (not a WeChat shape)."""
    return {
        "out_trade_no": order.out_trade_no,
        "trade_type": order.trade_type,
        "trade_state": order.state,
        "amount_total": order.request["amount"]["total"],
        "description": order.request["description"],
        "scenario": order.scenario.value if order.scenario else None,
        "auth_code": order.request.get("payer", {}).get("auth_code"),
        "code_url": order.code_url,
        "created_at": order.created_at,
        "expires_at": order.expires_at,
        "settle_at": order.settle_at,
        "transaction_id": order.transaction_id,
        "refunded": order.refunded,
    }


def _state_error(order: _Order, now: float) -> ApiError:
    """Why an order in its current state refuses a payment or a re-submission."""
    if order.state == "SUCCESS":
        return ApiError(400, "ORDERPAID", "订单已支付", schema.ID_ORDER_PAID)
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
