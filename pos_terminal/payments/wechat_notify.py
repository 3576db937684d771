"""WeChat Pay notifications (webhooks): verify, decrypt, and record them into the journal.

Reference: wechatpay-v3.md §1.2, §1.5, §3.8. A notification is accepted only when its signature
checks out with our WeChat Pay key and its timestamp is fresh; `WECHATPAY/SIGNTEST/` probes are
refused on purpose so WeChat resends a properly signed copy. Recording is idempotent: WeChat
delivers the same event more than once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pos_terminal.journal import FINAL_STATES, Journal, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatCredentials, WeChatPayError

log = logging.getLogger(__name__)

SIGN_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_NOTIFICATION_BYTES = 64 * 1024


class NotificationError(WeChatPayError):
    """A notification we must refuse (answered 4xx, so WeChat retries or resends)."""


@dataclass(frozen=True)
class Notification:
    id: str
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    summary: str
    resource: dict[str, Any]  # the decrypted resource: a Transaction or a refund object


def open_notification(
    headers: Mapping[str, str], body: bytes, *, creds: WeChatCredentials, now: float
) -> Notification:
    """Verify and decrypt one notification exactly as received.

    Raises:
        NotificationError: a probe, a bad or stale signature, a malformed envelope, or a
            resource that does not decrypt with our APIv3 key.
    """
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise NotificationError(f"notification of {len(body)} bytes is too large")
    signature = {k.lower(): v for k, v in headers.items()}.get("wechatpay-signature", "")
    if signature.startswith(SIGN_PROBE_PREFIX):
        raise NotificationError("signature probe (WECHATPAY/SIGNTEST/): refused as required")
    try:
        wechat_sign.check_signed_message(
            headers,
            body,
            public_key=creds.platform_public_key,
            public_key_id=creds.public_key_id,
            now=now,
        )
        envelope = json.loads(body)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationError(f"resource algorithm {resource.get('algorithm')!r:.40}")
        plain = wechat_sign.decrypt_resource(
            creds.apiv3_key,
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
    except wechat_sign.SignFormatError as exc:
        raise NotificationError(str(exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotificationError(f"malformed notification: {type(exc).__name__}: {exc}") from exc


def record(journal: Journal, note: Notification, *, now: datetime) -> str:
    """Apply a notification to the journal; returns what happened, for the log.

    Only TRANSACTION.SUCCESS changes a row (a payment the terminal had not seen yet); a row
    already final is left alone, and a SUCCESS for an order the journal closed is flagged.
    """
    if note.event_type != "TRANSACTION.SUCCESS":
        return f"{note.event_type} {note.id}: noted, no payment row changes"
    out_trade_no = str(note.resource.get("out_trade_no", ""))
    state = note.resource.get("trade_state")
    row = journal.by_out_trade_no(out_trade_no)
    if row is None:
        return f"SUCCESS for {out_trade_no!r}: not an order of this journal"
    if state != "SUCCESS":
        return f"{out_trade_no}: event says trade_state {state!r}; ignored"
    if row.state is RowState.APPROVED:
        return f"{out_trade_no}: already approved (duplicate delivery)"
    if row.state in FINAL_STATES:
        journal.note(row.id, f"notification {note.id}: paid, but journal says {row.state}", now=now)
        log.error(
            "order %s paid per notification but %s in the journal: refund it",
            out_trade_no,
            row.state,
        )
        return f"{out_trade_no}: CONFLICT paid but {row.state}; flagged for a refund"
    transaction_id = note.resource.get("transaction_id")
    journal.transition(
        row.id,
        RowState.APPROVED,
        now=now,
        note=f"paid (notification {note.id})",
        transaction_id=str(transaction_id) if transaction_id else None,
    )
    return f"{out_trade_no}: approved by notification"
