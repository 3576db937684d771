"""What the machine asks the runtime to do, and the timers it names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pos_terminal.machine.events import ApprovedSale, Resolved
from pos_terminal.ports import Screen


class Timer(StrEnum):
    """The machine's timers; each value is also the configured duration it runs for."""

    AWAITING = "awaiting"  # no payment code or QR asked for in time
    QR = "qr_expiry"  # the QR on screen expires
    RESULT = "result_hold"  # how long a result stays on screen


# the runtime's names for the configured durations
TIMER_AWAITING: str = Timer.AWAITING
TIMER_QR: str = Timer.QR
TIMER_RESULT: str = Timer.RESULT


@dataclass(frozen=True)
class Show:
    screen: Screen


@dataclass(frozen=True)
class StartCodePayment:
    attempt: int
    amount_fen: int
    auth_code: str


@dataclass(frozen=True)
class StartNativePayment:
    attempt: int
    amount_fen: int


@dataclass(frozen=True)
class CancelPayment:
    attempt: int


@dataclass(frozen=True)
class PrintReceipt:
    sale: ApprovedSale


@dataclass(frozen=True)
class PrintRecoverySlip:
    """Print what recovery resolved, for the merchant: money moved while nobody watched."""

    rows: tuple[Resolved, ...]


@dataclass(frozen=True)
class Reprint:
    """Print a receipt again: the sale or refund with this number, or the latest printed."""

    out_trade_no: str | None = None


@dataclass(frozen=True)
class FindRefundable:
    """Look a sale up by its order number, or by the trailing digits the cashier typed."""

    query: str


@dataclass(frozen=True)
class StartRefund:
    out_trade_no: str
    amount_fen: int
    reason: str  # why, as the refund row and the slip record it
    authorised_by: str  # who authorised it (the supervisor, by PIN)


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds_key: str  # which configured duration: a Timer value


@dataclass(frozen=True)
class CancelTimer:
    name: str


def start_timer(timer: Timer) -> StartTimer:
    return StartTimer(timer, timer)


Effect = (
    Show
    | StartCodePayment
    | StartNativePayment
    | CancelPayment
    | PrintReceipt
    | PrintRecoverySlip
    | Reprint
    | FindRefundable
    | StartRefund
    | StartTimer
    | CancelTimer
)
