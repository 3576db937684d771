"""One sandbox order and its refunds: the record kept in memory and on disk, and its views.

`transaction()` is WeChat's "Transaction" shape (reference §3.4); `sandbox_view()` is the
sandbox's own, for tests and people; `to_record`/`from_record` are the JSON kept by store.py.
Refund rules live in refunds.py; a refund is stored inside its order's record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta, timezone
from enum import StrEnum
from typing import Any

from hw_mocks.wechat_sandbox.schema import ApiError

CST = timezone(timedelta(hours=8), "CST")


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
    "REFUND": "转入退款",
}


@dataclass
class Refund:
    """One refund of an order (reference §3.7); `status` moves to `outcome` at `settle_at`."""

    out_refund_no: str
    refund_id: str
    request: dict[str, Any]  # the first body received, for the re-entry rule
    refund_fen: int
    created_at: float
    status: str  # PROCESSING, then SUCCESS, ABNORMAL or CLOSED
    outcome: str
    settle_at: float | None
    success_time: str | None = None


@dataclass
class Order:
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
    refunds: list[Refund] = field(default_factory=list)  # in creation order


@dataclass(frozen=True)
class Event:
    """A change WeChat posts to the merchant's notify_url (reference §3.8): a Native order
    paid (TRANSACTION.SUCCESS, never for payment codes) or a refund ended (REFUND.*)."""

    event_type: str
    notify_url: str
    resource: dict[str, Any]  # the plaintext of the notification's encrypted resource


@dataclass(frozen=True)
class WalletCode:
    scenario: Scenario
    delay_s: float | None
    issued_at: float


def to_record(order: Order) -> dict[str, Any]:
    record = {f.name: getattr(order, f.name) for f in fields(Order)}
    record["scenario"] = order.scenario.value if order.scenario else None
    err = order.first_error
    if err is not None:
        record["first_error"] = {
            "status": err.status,
            "code": err.code,
            "message": err.message,
            "error_id": err.error_id,
            "detail": None if err.detail is None else dict(err.detail),
        }
    record["refunds"] = [asdict(refund) for refund in order.refunds]
    return record


def from_record(record: dict[str, Any]) -> Order:
    """Raises KeyError/TypeError/ValueError for a record this version did not write."""
    data = dict(record)
    scenario, err = data.pop("scenario"), data.pop("first_error")
    refunds = data.pop("refunds", [])  # records written before refunds existed have none
    return Order(
        **data,
        scenario=Scenario(scenario) if scenario else None,
        first_error=ApiError(**err) if err else None,
        refunds=[Refund(**refund) for refund in refunds],
    )


def trade_state(order: Order) -> str:
    """The trade_state WeChat shows: a paid order with any refund reads REFUND (§4.1)."""
    return "REFUND" if order.state == "SUCCESS" and order.refunds else order.state


def transaction(order: Order, appid: str, mchid: str) -> dict[str, Any]:
    """The "Transaction" object (§3.4); unpaid orders omit payer, id and success_time."""
    req = order.request
    out: dict[str, Any] = {
        "appid": appid,
        "mchid": mchid,
        "out_trade_no": order.out_trade_no,
        "trade_type": order.trade_type,
        "trade_state": trade_state(order),
        "trade_state_desc": STATE_DESC.get(trade_state(order), order.state),
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


def sandbox_view(order: Order) -> dict[str, Any]:
    """The sandbox's own view of an order, for tests and people (not a WeChat shape)."""
    return {
        "out_trade_no": order.out_trade_no,
        "trade_type": order.trade_type,
        "trade_state": trade_state(order),
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
        "refunds": [
            {
                "out_refund_no": refund.out_refund_no,
                "refund_id": refund.refund_id,
                "refund_fen": refund.refund_fen,
                "status": refund.status,
                "outcome": refund.outcome,
                "created_at": refund.created_at,
                "settle_at": refund.settle_at,
            }
            for refund in order.refunds
        ],
    }
