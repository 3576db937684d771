"""What the machine asks the runtime to do, and the timers it names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pos_terminal.machine.events import ApprovedSale, Resolved
from pos_terminal.ports import Screen


class Timer(StrEnum):
    """The machine's timers. The first three run for the configured duration their value names;
    the PIN's run for durations the machine chooses (`StartTimer.seconds`)."""

    AWAITING = "awaiting"  # no payment code or QR asked for in time
    QR = "qr_expiry"  # the QR on screen expires
    RESULT = "result_hold"  # how long a result stays on screen
    PIN_PAUSE = "pin_pause"  # the pause after a wrong supervisor PIN
    PIN_LOCKOUT = "pin_lockout"  # a minute of the supervisor PIN's lockout


# the runtime's names for the configured durations
TIMER_AWAITING: str = Timer.AWAITING
TIMER_QR: str = Timer.QR
TIMER_RESULT: str = Timer.RESULT


@dataclass(frozen=True)
class Show:
    """What the customer sees (`screen`) and, where it differs, what the cashier sees: a
    supervisor's prompt is the cashier's while the customer's display says something neutral."""

    screen: Screen
    cashier: Screen | None = None  # None: the cashier sees `screen` too

    @property
    def cashier_screen(self) -> Screen:
        return self.screen if self.cashier is None else self.cashier


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
    seconds: float | None = None  # a duration of the machine's own, instead of the configured


@dataclass(frozen=True)
class CancelTimer:
    name: str


def start_timer(timer: Timer, seconds: float | None = None) -> StartTimer:
    return StartTimer(timer, timer, seconds)


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
