"""WeChat Pay refund results (reference §3.7, §4.2): the status, the Refund, strict parsing.

Apart from wechat.py for size only; wechat.py re-exports these and turns `RefundFormatError`
into `WeChatResponseError`, so callers of the client never see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"  # accepted; query again later (first query ~1 min after create)
    SUCCESS = "SUCCESS"  # the money is back with the payer
    CLOSED = "CLOSED"  # nothing refunded; a new attempt needs a new out_refund_no
    ABNORMAL = "ABNORMAL"  # payer account frozen/cancelled: apply-abnormal-refund or offline


@dataclass(frozen=True)
class Refund:
    """The parts of WeChat's "Refund" object (§3.7) that a terminal uses."""

    out_refund_no: str
    refund_id: str  # WeChat's refund number, ~29 digits
    out_trade_no: str
    status: RefundStatus
    refund_fen: int  # this refund
    total_fen: int  # the original order total
    success_time: str | None = None  # RFC 3339, once SUCCESS
    user_received_account: str | None = None  # e.g. "支付用户零钱", "招商银行信用卡0403"


class RefundFormatError(ValueError):
    """A refund answer is missing a field, has one of the wrong type, or is for another refund."""


def refund_from_json(
    data: Mapping[str, Any], *, out_refund_no: str, out_trade_no: str | None = None
) -> Refund:
    """Parse a Refund object strictly and check it answers for `out_refund_no` (and order).

    Raises:
        RefundFormatError: a required field is missing or mistyped, an amount is out of range,
            or the refund or order is not the one asked about.
    """
    amount = _get(data, "amount", dict)
    raw_status = _get(data, "status", str)
    try:
        status = RefundStatus(raw_status)
    except ValueError as exc:
        raise RefundFormatError(f"unknown status {raw_status!r:.40}") from exc
    refund = Refund(
        out_refund_no=_get(data, "out_refund_no", str),
        refund_id=_get(data, "refund_id", str),
        out_trade_no=_get(data, "out_trade_no", str),
        status=status,
        refund_fen=_get(amount, "refund", int, "amount."),
        total_fen=_get(amount, "total", int, "amount."),
        success_time=_get(data, "success_time", str, required=False),
        user_received_account=_get(data, "user_received_account", str, required=False),
    )
    if not refund.refund_id.isdigit():
        raise RefundFormatError(f"refund_id {refund.refund_id!r:.40} is not digits")
    if not 1 <= refund.refund_fen <= refund.total_fen:
        raise RefundFormatError(f"amount.refund {refund.refund_fen} not in 1..{refund.total_fen}")
    if refund.success_time is not None:
        try:
            datetime.fromisoformat(refund.success_time)
        except ValueError as exc:
            raise RefundFormatError(f"success_time {refund.success_time!r:.40}") from exc
    if refund.out_refund_no != out_refund_no:
        raise RefundFormatError(f"answer is for refund {refund.out_refund_no!r:.70}")
    if out_trade_no is not None and refund.out_trade_no != out_trade_no:
        raise RefundFormatError(f"answer is for order {refund.out_trade_no!r:.40}")
    return refund


def _get(
    data: Mapping[str, Any], name: str, kind: type, where: str = "", *, required: bool = True
) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise RefundFormatError(f"missing {where}{name!r}")
        return None
    # bool is an int in Python; WeChat never sends booleans where numbers belong
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RefundFormatError(f"{where}{name!r} should be {kind.__name__}, got {value!r:.40}")
    return value
