"""The machine's state: the terminal's session and the mode of the sub-machine in charge.

`State.phase` and the other properties flatten the two for observers (console, tests), with the
meaning the flat state of earlier versions had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from pos_terminal.machine.effects import Effect
from pos_terminal.machine.events import ApprovedSale, RefundFinished, RefundOutcome, Resolved
from pos_terminal.payment_codes import DEFAULT_RULES, CodeRules
from pos_terminal.ports import Screen


class Phase(StrEnum):
    RECOVERING = "RECOVERING"  # boot: resolving journal rows left in doubt; no sales yet
    RECOVERED = "RECOVERED"  # what recovery resolved, on screen until the cashier presses Enter
    IDLE = "IDLE"
    ENTERING_AMOUNT = "ENTERING_AMOUNT"
    CONFIRMING = "CONFIRMING"
    CONFIRMING_LARGE = "CONFIRMING_LARGE"  # a large amount: confirmed again, read out in words
    AWAITING_PAYMENT = "AWAITING_PAYMENT"  # scan the customer's code, or show a QR
    CHARGING_CODE = "CHARGING_CODE"
    SHOWING_QR = "SHOWING_QR"
    CANCELLING = "CANCELLING"  # closing or reversing the order after a cancel or expiry
    IN_DOUBT = "IN_DOUBT"  # something failed after the request left: resolving; do not charge again
    EXCEPTION = "EXCEPTION"  # WeChat contradicts the journal: a supervisor must settle it
    PRINTING = "PRINTING"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"  # cancelled by the cashier, or its QR expired: nothing charged
    SUPERVISOR_PIN = "SUPERVISOR_PIN"  # refunds need the supervisor's PIN
    SUPERVISOR_WAIT = "SUPERVISOR_WAIT"  # after a wrong PIN: a pause before the next one
    SUPERVISOR_LOCKED = "SUPERVISOR_LOCKED"  # too many wrong PINs: no PIN taken for a while
    REFUND_ORDER = "REFUND_ORDER"  # scan the receipt's QR or type the order number
    REFUND_AMOUNT = "REFUND_AMOUNT"  # full by default, or key a partial amount
    REFUNDING = "REFUNDING"
    REFUND_RESULT = "REFUND_RESULT"


@dataclass(frozen=True)
class PinGuard:
    """Wrong supervisor PINs and what they cost: a pause before the next try, then a lockout.
    The session's: going back to idle ends neither the pause nor the lockout."""

    wrong: int = 0  # wrong PINs since the last right one
    pausing: bool = False  # the pause after a wrong PIN has not run out yet
    locked_minutes: int = 0  # whole minutes of lockout left; 0: not locked


@dataclass(frozen=True)
class Session:
    """What outlives every sale: configuration, the attempt counter, the devices' news."""

    code_rules: CodeRules = DEFAULT_RULES  # which scans are payment codes (from config)
    supervisor_pin_sha256: str = ""  # from config; empty: refunds are off
    large_amount_fen: int = 0  # from config: sales from this amount are confirmed twice; 0: never
    attempt: int = 0  # numbers payment attempts so late results of an old one are ignored
    last_sale: ApprovedSale | None = None
    printer_notice: str = ""  # why the printer needs attention; empty when it is fine
    device_notices: tuple[tuple[str, str], ...] = ()  # (device, trouble) for each one in trouble
    pin_guard: PinGuard = PinGuard()


@dataclass(frozen=True)
class ModeBase:
    """A sub-machine's own state; `PHASES` are the phases it may be in."""

    PHASES: ClassVar[frozenset[Phase]] = frozenset(Phase)
    phase: Phase

    def __post_init__(self) -> None:
        if self.phase not in self.PHASES:
            raise ValueError(f"{type(self).__name__} has no phase {self.phase}")


@dataclass(frozen=True)
class Booting(ModeBase):
    """Recovery at start, counting the rows it resolves, then its summary."""

    PHASES = frozenset({Phase.RECOVERING, Phase.RECOVERED})
    phase: Phase = Phase.RECOVERING
    position: int = 0  # RECOVERING: the row being resolved (1-based), of `total`; 0: none yet
    total: int = 0
    rows: tuple[Resolved, ...] = ()  # RECOVERED: how each row ended
    attention: int = 0  # payments a supervisor must settle, said once sales start


@dataclass(frozen=True)
class Sale(ModeBase):
    """Sale entry: the amount, then waiting for a tender, then the tender's result."""

    PHASES = frozenset(
        {
            Phase.IDLE,
            Phase.ENTERING_AMOUNT,
            Phase.CONFIRMING,
            Phase.CONFIRMING_LARGE,
            Phase.AWAITING_PAYMENT,
            Phase.PRINTING,
            Phase.APPROVED,
            Phase.DECLINED,
            Phase.CANCELLED,
            Phase.EXCEPTION,
        }
    )
    amount_fen: int = 0
    decimals: int | None = None  # digits keyed after the point (money.Keyed)
    notice: str = ""  # one line for the cashier (declined reason, refused scan ...)
    printed: bool = True  # APPROVED: the receipt came out


class TenderKind(Protocol):
    """One way to pay (payment code, QR, later cards): its own phase while it runs."""

    @property
    def phase(self) -> Phase: ...

    def screen(self, tender: Tender) -> Screen:
        """The screen while this tender runs."""
        ...

    def on_leave(self) -> tuple[Effect, ...]:
        """Effects when the tender leaves its own phase (a timer of its own to stop)."""
        ...


@dataclass(frozen=True)
class Tender(ModeBase):
    """A payment attempt in flight (the attempt number is the session's)."""

    PHASES = frozenset({Phase.CHARGING_CODE, Phase.SHOWING_QR, Phase.CANCELLING, Phase.IN_DOUBT})
    kind: TenderKind = field(kw_only=True)
    amount_fen: int = 0
    notice: str = ""
    code_url: str | None = None
    customer_paying: bool = False  # the provider waits on the customer's password


class Purpose(StrEnum):
    """What a supervisor is asked to authorise."""

    REFUND = "refund"


@dataclass(frozen=True)
class Supervisor(ModeBase):
    PHASES = frozenset({Phase.SUPERVISOR_PIN, Phase.SUPERVISOR_WAIT, Phase.SUPERVISOR_LOCKED})
    phase: Phase = Phase.SUPERVISOR_PIN
    purpose: Purpose = Purpose.REFUND
    pin: str = field(default="", repr=False)  # the digits typed so far: never shown or logged


NO_RESULT = RefundFinished(RefundOutcome.FAILED)  # a refund's result before it has one
# why a refund is made, as the cashier picks it (the first unless another is picked)
REFUND_REASONS = (
    "顾客退货 Customer return",
    "商品问题 Faulty goods",
    "收错金额 Wrong amount charged",
    "其他 Other",
)
DEFAULT_REFUND_REASON = REFUND_REASONS[0]
SUPERVISOR = "supervisor"  # who authorised with the supervisor PIN (staff accounts will name one)


@dataclass(frozen=True)
class Refund(ModeBase):
    PHASES = frozenset(
        {Phase.REFUND_ORDER, Phase.REFUND_AMOUNT, Phase.REFUNDING, Phase.REFUND_RESULT}
    )
    order_entry: str = ""  # digits typed for the order number
    notice: str = ""
    out_trade_no: str = ""  # the sale being refunded, once found
    refundable_fen: int = 0
    refund_fen: int = 0  # the amount to refund: the whole refundable amount until one is keyed
    keyed: bool = False  # the cashier has keyed an amount of their own
    decimals: int | None = None  # digits keyed after the point (money.Keyed)
    outcome: RefundFinished = NO_RESULT  # REFUND_RESULT: how it ended
    reason: str = DEFAULT_REFUND_REASON
    authorised_by: str = ""  # who authorised the refund


Mode = Booting | Sale | Tender | Supervisor | Refund


@dataclass(frozen=True)
class State:
    session: Session = Session()
    mode: Mode = Booting()

    @property
    def phase(self) -> Phase:
        return self.mode.phase

    @property
    def amount_fen(self) -> int:
        """The amount on screen: the sale's, or the refund's."""
        match self.mode:
            case Sale(amount_fen=fen) | Tender(amount_fen=fen) | Refund(refund_fen=fen):
                return fen
        return 0

    @property
    def notice(self) -> str:
        match self.mode:
            case Sale(notice=text) | Tender(notice=text) | Refund(notice=text):
                return text
        return ""

    @property
    def entry(self) -> str:
        """Digits typed for the order number of a refund (a PIN being typed is not shown)."""
        return self.mode.order_entry if isinstance(self.mode, Refund) else ""

    @property
    def code_url(self) -> str | None:
        return self.mode.code_url if isinstance(self.mode, Tender) else None

    @property
    def refundable_fen(self) -> int:
        return self.mode.refundable_fen if isinstance(self.mode, Refund) else 0

    @property
    def last_sale(self) -> ApprovedSale | None:
        return self.session.last_sale

    @property
    def printer_notice(self) -> str:
        return self.session.printer_notice

    @property
    def device_notices(self) -> tuple[tuple[str, str], ...]:
        return self.session.device_notices
