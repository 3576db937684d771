"""WeChat Pay notifications (webhooks): verify, decrypt, and record them into the journal.

Reference: wechatpay-v3.md §1.2, §1.5, §3.8. A notification is accepted only when its signature
checks out with the WeChat key its `Wechatpay-Serial` names (public key or platform certificate)
and its timestamp is fresh; `WECHATPAY/SIGNTEST/` probes are refused on purpose so WeChat resends
a properly signed copy. Recording is idempotent: WeChat delivers the same event more than once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from pos_terminal.business_day import BusinessDay
from pos_terminal.journal import FINAL_STATES, Journal, RowState
from pos_terminal.journal_refunds import (
    ABNORMAL_ADVICE,
    LATER,
    REFUND_ALLOWED,
    REFUND_FINAL,
    RefundBook,
    RefundState,
)
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import TradeState, parse_transaction
from pos_terminal.payments.wechat_errors import WeChatPayError
from pos_terminal.payments.wechat_refund import STATE_OF

log = logging.getLogger(__name__)

SIGN_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_NOTIFICATION_BYTES = 64 * 1024


class NotificationError(WeChatPayError):
    """A notification we must refuse (answered 4xx, so WeChat retries or resends)."""


class UnknownNotificationSigner(NotificationError):
    """Signed by a key not in our key set; `.serial` is its `Wechatpay-Serial`."""

    def __init__(self, message: str, serial: str) -> None:
        super().__init__(message)
        self.serial = serial


@dataclass(frozen=True)
class Notification:
    id: str
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    summary: str
    resource: dict[str, Any]  # the decrypted resource: a Transaction or a refund object


def open_notification(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Mapping[str, rsa.RSAPublicKey],
    apiv3_key: str,
    now: float,
) -> Notification:
    """Verify (with `keys`, serial → WeChat key) and decrypt one notification exactly as received.

    Raises:
        UnknownNotificationSigner: signed by a key not in `keys` (e.g. a new certificate).
        NotificationError: a probe, a bad or stale signature, a malformed envelope, or a
            resource that does not decrypt with our APIv3 key.
    """
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise NotificationError(f"notification of {len(body)} bytes is too large")
    signature = {k.lower(): v for k, v in headers.items()}.get("wechatpay-signature", "")
    if signature.startswith(SIGN_PROBE_PREFIX):
        raise NotificationError("signature probe (WECHATPAY/SIGNTEST/): refused as required")
    try:
        wechat_sign.check_signed_message(headers, body, keys=keys, now=now)
        envelope = json.loads(body)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationError(f"resource algorithm {resource.get('algorithm')!r:.40}")
        plain = wechat_sign.decrypt_resource(
            apiv3_key,
            str(resource["ciphertext"]),
            nonce=str(resource["nonce"]),
            associated_data=str(resource.get("associated_data", "")),
        )
        decrypted = json.loads(plain)
        if not isinstance(decrypted, dict):
            raise NotificationError("decrypted resource is not an object")
        return Notification(
            id=str(envelope["id"]),
            event_type=str(envelope["event_type"]),
            summary=str(envelope.get("summary", "")),
            resource=decrypted,
        )
    except wechat_sign.UnknownSignerError as exc:
        raise UnknownNotificationSigner(str(exc), exc.serial) from exc
    except wechat_sign.SignFormatError as exc:
        raise NotificationError(str(exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotificationError(f"malformed notification: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Merchant:
    """Whose notifications these are, and how their payments are dated."""

    mchid: str
    appid: str
    business_day: BusinessDay


def record(journal: Journal, note: Notification, *, now: datetime, merchant: Merchant) -> str:
    """Apply a notification to the journal; returns what happened, for the log.

    TRANSACTION.SUCCESS approves a payment the terminal had not seen paid yet, unless it
    contradicts the row (amount, merchant, app): then the row ends EXCEPTION, flagged. A row
    already final, or being reversed, is left alone, and a SUCCESS for an order the journal
    closed is flagged. REFUND.* ends a refund the same way the terminal's own query would.
    A duplicate changes nothing.
    """
    if note.event_type in REFUND_EVENTS:
        return _record_refund(RefundBook(journal), note, now=now)
    if note.event_type != "TRANSACTION.SUCCESS":
        return f"{note.event_type} {note.id}: not an event this journal records"
    try:
        tx = parse_transaction(json.dumps(note.resource).encode(), what="notification")
    except WeChatPayError as exc:
        return f"{note.event_type} {note.id}: unreadable resource ({exc}); ignored"
    row = journal.by_out_trade_no(tx.out_trade_no)
    if row is None:
        return f"SUCCESS for {tx.out_trade_no!r:.40}: not an order of this journal"
    if tx.trade_state is not TradeState.SUCCESS:
        return f"{row.out_trade_no}: event says trade_state {tx.trade_state}; ignored"
    if row.state is RowState.APPROVED:
        return f"{row.out_trade_no}: already approved (duplicate delivery)"
    if row.state in FINAL_STATES or row.state is RowState.REVERSING:
        journal.note(row.id, f"notification {note.id}: paid, but journal says {row.state}", now=now)
        log.error(
            "order %s paid per notification but %s in the journal: refund it",
            row.out_trade_no,
            row.state,
        )
        return f"{row.out_trade_no}: CONFLICT paid but {row.state}; flagged for a refund"
    problem = tx.contradiction(
        out_trade_no=row.out_trade_no,
        amount_fen=row.amount_fen,
        mchid=merchant.mchid,
        appid=merchant.appid,
    )
    if problem is not None:
        journal.transition(
            row.id,
            RowState.EXCEPTION,
            now=now,
            note=f"notification {note.id}: paid answer contradicts the journal",
            attention=problem,
        )
        log.error("order %s: notification contradicts the journal: %s", row.out_trade_no, problem)
        return f"{row.out_trade_no}: EXCEPTION {problem}"
    journal.transition(
        row.id,
        RowState.APPROVED,
        now=now,
        note=f"paid (notification {note.id})",
        transaction_id=tx.transaction_id,
        success_time=tx.success_time,
        business_date=merchant.business_day.paid_on(tx.success_time, now),
    )
    return f"{row.out_trade_no}: approved by notification"


# REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED: the final refund statuses (§3.8)
REFUND_EVENTS = {
    f"REFUND.{status}": state for status, state in STATE_OF.items() if state in REFUND_FINAL
}


def _record_refund(book: RefundBook, note: Notification, *, now: datetime) -> str:
    """REFUND.SUCCESS/ABNORMAL/CLOSED: move the refund row; a contradiction is flagged."""
    to = REFUND_EVENTS[note.event_type]
    resource = note.resource
    number = str(resource.get("out_refund_no", ""))
    row = book.by_out_refund_no(number)
    if row is None:
        return f"{note.event_type} for {number!r:.40}: not a refund of this journal"
    if resource.get("refund_status") != to.value:
        problem = f"notification {note.id}: {note.event_type} with refund_status"
        problem += f" {resource.get('refund_status')!r:.20}; journal unchanged"
        book.note(row.id, problem, now=now)
        log.error("refund %s: %s", number, problem)
        return f"{number}: CONFLICT {problem}"
    amount = resource.get("amount")
    refunded = amount.get("refund") if isinstance(amount, dict) else None
    if resource.get("out_trade_no") != row.out_trade_no or refunded != row.amount_fen:
        problem = f"notification {note.id}: {to} for {resource.get('out_trade_no')!r:.40}"
        problem += f" {refunded!r:.20} fen, journal has {row.out_trade_no} {row.amount_fen} fen"
        book.note(row.id, problem, now=now)
        log.error("refund %s: %s", number, problem)
        return f"{number}: CONFLICT {problem}"
    if row.state is to or row.state in LATER[to]:
        return f"{number}: already {row.state} (duplicate or late delivery)"
    if to not in REFUND_ALLOWED[row.state]:
        book.note(row.id, f"notification {note.id}: {to}, but journal says {row.state}", now=now)
        log.error("refund %s: WeChat says %s, journal says %s", number, to, row.state)
        return f"{number}: CONFLICT {to} but journal says {row.state}"
    refund_id = resource.get("refund_id")
    book.transition(
        row.id,
        to,
        now=now,
        note=f"WeChat: {to} (notification {note.id})",
        refund_id=str(refund_id) if refund_id else None,
    )
    if to is RefundState.ABNORMAL:
        log.warning("refund %s is ABNORMAL: %s", number, ABNORMAL_ADVICE)
    return f"{number}: {to} by notification"
