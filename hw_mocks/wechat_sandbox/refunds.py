"""Sandbox refunds: the rules of `POST /v3/refund/domestic/refunds` and the "Refund" object.

Reference wechatpay-v3.md §3.7, §4.2, §5 and "What a faithful sandbox must reproduce" item 10.
`RefundDesk` is called by state.OrderBook with its lock held; refunds live inside their orders.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from hw_mocks.wechat_sandbox import schema
from hw_mocks.wechat_sandbox.orders import CST, Order, Refund
from hw_mocks.wechat_sandbox.schema import ApiError

MAX_REFUNDS_PER_ORDER = 50  # reference §5
REFUND_WINDOW_S = 365 * 86400  # reference §5: success_time + 365 days, not extendable

# Magic refund amounts (`amount.refund`, in fen); any other amount ends SUCCESS.
REFUND_OUTCOMES = {4005: "ABNORMAL", 4006: "CLOSED"}
NOT_ENOUGH_REFUND_FEN = 4007  # 403 NOT_ENOUGH: the merchant's balance cannot cover it


class RefundDesk:
    """Creates, replays and settles refunds; every time is the order clock's."""

    def __init__(self, *, interval_s: float, delay_s: float) -> None:
        """`interval_s`: least time between two refunds of one order (WeChat: 60 s);
        `delay_s`: how long a refund stays PROCESSING.

        Raises:
            ValueError: a negative interval or delay.
        """
        if interval_s < 0 or delay_s < 0:
            raise ValueError(
                f"refund_interval_s and refund_delay_s must be ≥ 0, got {interval_s}, {delay_s}"
            )
        self._interval_s, self._delay_s = interval_s, delay_s

    def create(
        self,
        body: dict[str, Any],
        orders: Mapping[str, Order],
        by_transaction_id: Mapping[str, str],
        advance: Callable[[Order], None],
        now: float,
    ) -> dict[str, Any]:
        """A new refund, or the existing one for an identical re-submission; `body` is checked
        against schema.REFUND already, `advance` brings an order up to `now`.

        Raises:
            ApiError: the re-entry, state, amount, count, frequency or balance rules refuse it.
        """
        _check_from(body["amount"])
        found = find(orders.values(), body["out_refund_no"])
        if found is not None:
            order, refund = found
            if refund.request != body:
                raise ApiError(
                    400, "INVALID_REQUEST", "请求重入时，参数与首次请求时不一致", schema.ID_REENTRY
                )
            advance(order)
            return refund_object(order, refund)
        order = _target(body, orders, by_transaction_id)
        advance(order)
        self._check(order, body, now)
        amount = body["amount"]["refund"]
        refund = Refund(
            out_refund_no=body["out_refund_no"],
            refund_id=_refund_id(now),
            request=body,
            refund_fen=amount,
            created_at=now,
            status="PROCESSING",
            outcome=REFUND_OUTCOMES.get(amount, "SUCCESS"),
            settle_at=now + self._delay_s,
        )
        order.refunds.append(refund)  # answered PROCESSING even with a zero delay, like WeChat
        return refund_object(order, refund)

    def _check(self, order: Order, body: dict[str, Any], now: float) -> None:
        if order.state != "SUCCESS":
            why = {"REVOKED": "订单已撤销", "CLOSED": "订单已关闭"}.get(order.state, "订单未支付")
            raise _invalid(f"{why}，不能退款 (trade_state {order.state})")
        total = order.request["amount"]["total"]
        if body["amount"]["total"] != total:
            raise _invalid(f"订单金额与原订单不一致 amount.total must be {total}")
        if order.success_time is not None:
            paid_at = datetime.fromisoformat(order.success_time).timestamp()
            if now - paid_at > REFUND_WINDOW_S:
                raise _invalid("订单已超过退款期限 (paid more than 365 days ago)")
        if len(order.refunds) >= MAX_REFUNDS_PER_ORDER:
            raise _invalid(f"退款次数超过限制 (at most {MAX_REFUNDS_PER_ORDER} per order)")
        if order.refunds and now - order.refunds[-1].created_at < self._interval_s:
            msg = "频率限制，同一笔订单的多次退款请间隔1分钟以上再重试"
            raise ApiError(429, "FREQUENCY_LIMITED", msg, schema.ID_RATE_LIMIT)
        counted = sum(r.refund_fen for r in order.refunds if r.status != "CLOSED")
        if counted + body["amount"]["refund"] > total:
            raise _invalid("申请退款金额超过订单可退金额")
        if body["amount"]["refund"] == NOT_ENOUGH_REFUND_FEN:
            msg = "基本账户余额不足，请充值后重新发起"
            raise ApiError(403, "NOT_ENOUGH", msg, schema.ID_NOT_ENOUGH)


def find(orders: Iterable[Order], out_refund_no: str) -> tuple[Order, Refund] | None:
    """The order and refund with this number (numbers are unique per merchant, §3.7)."""
    for order in orders:
        for refund in order.refunds:
            if refund.out_refund_no == out_refund_no:
                return order, refund
    return None


def settle(order: Order, now: float) -> list[Refund]:
    """Move PROCESSING refunds whose time has come to their outcome; returns those moved."""
    moved = []
    for refund in order.refunds:
        due = refund.settle_at
        if refund.status == "PROCESSING" and due is not None and now >= due:
            refund.status, refund.settle_at = refund.outcome, None
            if refund.outcome == "SUCCESS":
                refund.success_time = _rfc3339(due)
            moved.append(refund)
    return moved


def refund_notice(order: Order, refund: Refund, mchid: str) -> dict[str, Any]:
    """The decrypted `resource` of a REFUND.* notification (§3.8: `refund_status`, not `status`)."""
    total = order.request["amount"]["total"]
    notice: dict[str, Any] = {
        "mchid": mchid,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.status,
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": total,
            "refund": refund.refund_fen,
            "payer_total": total,
            "payer_refund": refund.refund_fen,
        },
    }
    if refund.success_time is not None:
        notice["success_time"] = refund.success_time
    return notice


def refund_object(order: Order, refund: Refund) -> dict[str, Any]:
    """WeChat's "Refund" object (§3.7): money goes back the original way, to the wallet."""
    total = order.request["amount"]["total"]
    out: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": _rfc3339(refund.created_at),
        "status": refund.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": total,
            "refund": refund.refund_fen,
            "from": refund.request["amount"].get("from", []),
            "payer_total": total,
            "payer_refund": refund.refund_fen,
            "settlement_refund": refund.refund_fen,
            "settlement_total": total,
            "discount_refund": 0,
            "currency": "CNY",
        },
        "promotion_detail": [],
    }
    if refund.success_time is not None:
        out["success_time"] = refund.success_time
    return out


def not_exist() -> ApiError:
    return ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在", schema.ID_NOT_EXIST)


def _target(
    body: dict[str, Any], orders: Mapping[str, Order], by_transaction_id: Mapping[str, str]
) -> Order:
    """The order named by transaction_id (preferred, §3.7) or out_trade_no; both must agree."""
    out_trade_no = body.get("out_trade_no")
    if "transaction_id" in body:
        by_id = by_transaction_id.get(body["transaction_id"])
        if by_id is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在", schema.ID_NOT_EXIST)
        if out_trade_no is not None and out_trade_no != by_id:
            raise _invalid("transaction_id与out_trade_no不是同一笔订单")
        out_trade_no = by_id
    order = orders.get(out_trade_no or "")
    if order is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在", schema.ID_NOT_EXIST)
    return order


def _check_from(amount: Mapping[str, Any]) -> None:
    """The accounts a refund is paid from must add up to the refund (reference §3.7)."""
    sources = amount.get("from")
    if sources is not None and sum(s["amount"] for s in sources) != amount["refund"]:
        issue = f"出资金额之和应等于退款金额 amounts must add up to {amount['refund']}"
        raise schema.param_error("/amount/from", sources, issue)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message, schema.ID_TRADE_ERROR)


def _refund_id(now: float) -> str:
    """29 digits like `50000000382019052709732678859` (§5): 50…, the date, random digits."""
    day = datetime.fromtimestamp(now, CST).strftime("%Y%m%d")
    return "50000000" + day + "".join(secrets.choice(string.digits) for _ in range(13))


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, CST).isoformat(timespec="seconds")
