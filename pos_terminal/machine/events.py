"""What the machine hears: key presses, scans and timers from the runtime, and the results of the
payments, prints and look-ups it asked for. `ForAttempt` is how a result names its attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, get_args


class ForAttempt(Protocol):
    """A payment result, for the attempt it answers (late answers of an older one are ignored)."""

    @property
    def attempt(self) -> int: ...


@dataclass(frozen=True)
class KeyPressed:
    key: str  # "0".."9" or a Key value


@dataclass(frozen=True)
class CodeScanned:
    code: str


class Resolution(StrEnum):
    """How a payment or refund left in doubt ended when it was resolved at start."""

    PAID = "paid"  # approved: its receipt prints
    PAID_REFUND_OWED = "paid_refund_owed"  # approved, but the reverse came too late: refund it
    NOT_PAID = "not_paid"  # declined or closed: nobody was charged
    REVERSED = "reversed"  # reversed: any money went back
    EXCEPTION = "exception"  # WeChat contradicts the journal: a supervisor settles it
    REFUNDED = "refunded"
    REFUND_UNDER_WAY = "refund_under_way"  # WeChat has it (PROCESSING)
    NOT_REFUNDED = "not_refunded"  # refused, closed or abnormal: no money went back

    @property
    def moved_money(self) -> bool:
        """Money changed hands during recovery: the recovery slip prints."""
        return self in (Resolution.PAID, Resolution.PAID_REFUND_OWED, Resolution.REFUNDED)


@dataclass(frozen=True)
class Resolved:
    """One row resolved at start: a sale's order number or a refund's number, and its end."""

    number: str
    amount_fen: int
    resolution: Resolution


@dataclass(frozen=True)
class RecoveryProgress:
    """Recovery is resolving the `position`-th of `total` rows left in doubt."""

    position: int
    total: int


@dataclass(frozen=True)
class RecoveryDone:
    rows: tuple[Resolved, ...] = ()  # what was in doubt and how it ended, oldest first
    attention: int = 0  # payments a supervisor must settle (a refund owed, a contradiction)


@dataclass(frozen=True)
class TimerExpired:
    name: str


@dataclass(frozen=True)
class ApprovedSale:
    out_trade_no: str
    transaction_id: str
    method: str  # "wechat_code" | "wechat_native"
    amount_fen: int
    masked_code: str | None


@dataclass(frozen=True)
class QrReady:
    attempt: int
    code_url: str


@dataclass(frozen=True)
class PaymentPending:
    """The provider is waiting on the customer (USERPAYING: entering the password)."""

    attempt: int


@dataclass(frozen=True)
class PaymentApproved:
    attempt: int
    sale: ApprovedSale


@dataclass(frozen=True)
class PaymentDeclined:
    attempt: int
    reason: str


@dataclass(frozen=True)
class PaymentInDoubt:
    """The request may have reached WeChat but the outcome cannot be recorded or known yet."""

    attempt: int
    reason: str


@dataclass(frozen=True)
class PaymentException:
    """WeChat's answer contradicts the journal; nothing was approved."""

    attempt: int
    reason: str


@dataclass(frozen=True)
class PaymentCancelled:
    """The order was closed or reversed after a cancel or expiry; nobody was charged."""

    attempt: int


@dataclass(frozen=True)
class PrintDone:
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class OrderFound:
    """The sale a refund was asked for, and how much of it may still be refunded."""

    out_trade_no: str
    refundable_fen: int


@dataclass(frozen=True)
class OrderNotFound:
    reason: str


class RefundOutcome(StrEnum):
    """How a refund stands when the cashier's wait for it ends."""

    REFUNDED = "refunded"  # WeChat: SUCCESS
    ON_ITS_WAY = "on_its_way"  # WeChat: PROCESSING, the money goes back in its own time
    QUEUED = "queued"  # WeChat has not taken it yet (a 429, no answer): sent again by itself
    FAILED = "failed"  # refused, closed or abnormal: nothing (more) is refunded
    IN_DOUBT = "in_doubt"  # journaled, then something failed: it is finished in the background


@dataclass(frozen=True)
class RefundFinished:
    outcome: RefundOutcome
    refund_no: str = ""  # out_refund_no, once journaled
    reason: str = ""  # why it failed or is queued, as WeChat (or the terminal) put it


@dataclass(frozen=True)
class PrinterChanged:
    """The printer failed or came back: news in every phase."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class DeviceNotice:
    """A device's worker (or a background task) failed and restarts, or with an empty message
    works again: news in every phase, like PrinterChanged."""

    device: str
    message: str = ""


Event = (
    KeyPressed
    | CodeScanned
    | RecoveryProgress
    | RecoveryDone
    | TimerExpired
    | QrReady
    | PaymentPending
    | PaymentApproved
    | PaymentDeclined
    | PaymentInDoubt
    | PaymentException
    | PaymentCancelled
    | PrintDone
    | OrderFound
    | OrderNotFound
    | RefundFinished
    | PrinterChanged
    | DeviceNotice
)
EVENT_TYPES: tuple[type, ...] = get_args(Event)
