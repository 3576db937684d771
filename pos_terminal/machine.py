"""The sale as a pure state machine: `step(state, event) -> (state, effects)`.

No I/O, clock or randomness here: time arrives as TimerExpired events, payment results as events
posted by the runtime. Every transition is declared once in RULES; the diagram is drawn from it.
Over ~400 lines on purpose: states, events, effects and rules stay in one file so the whole
sale can be read, tested and drawn from one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from pos_terminal import money
from pos_terminal.payments.codes import DEFAULT_RULES, CodeRules

# ---------------------------------------------------------------------------- states and events


class Phase(StrEnum):
    RECOVERING = "RECOVERING"  # boot: resolving journal rows left in doubt; no sales yet
    IDLE = "IDLE"
    ENTERING_AMOUNT = "ENTERING_AMOUNT"
    CONFIRMING = "CONFIRMING"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"  # scan the customer's code, or show a QR
    CHARGING_CODE = "CHARGING_CODE"
    SHOWING_QR = "SHOWING_QR"
    CANCELLING = "CANCELLING"  # closing or reversing the order after a cancel or expiry
    PRINTING = "PRINTING"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"


class Key(StrEnum):
    """Cashier keypad keys other than the digits."""

    ENTER = "enter"
    BACKSPACE = "backspace"
    CLEAR = "clear"
    CANCEL = "cancel"
    QR = "qr"  # "show a QR code for the customer to scan"
    REPRINT = "reprint"  # print the last receipt again, marked 重印 REPRINT


@dataclass(frozen=True)
class KeyPressed:
    key: str  # "0".."9" or a Key value


@dataclass(frozen=True)
class CodeScanned:
    code: str


@dataclass(frozen=True)
class RecoveryDone:
    resolved: int


@dataclass(frozen=True)
class QrReady:
    attempt: int
    code_url: str


@dataclass(frozen=True)
class PaymentPending:
    """The provider is waiting on the customer (USERPAYING: entering the password)."""

    attempt: int


@dataclass(frozen=True)
class ApprovedSale:
    out_trade_no: str
    transaction_id: str
    method: str  # "wechat_code" | "wechat_native"
    amount_fen: int
    masked_code: str | None


@dataclass(frozen=True)
class PaymentApproved:
    attempt: int
    sale: ApprovedSale


@dataclass(frozen=True)
class PaymentDeclined:
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
class TimerExpired:
    name: str


@dataclass(frozen=True)
class PrinterChanged:
    """The printer failed or came back; it is news in every phase, so RULES do not list it."""

    ok: bool
    message: str = ""


Event = (
    KeyPressed
    | CodeScanned
    | RecoveryDone
    | QrReady
    | PaymentPending
    | PaymentApproved
    | PaymentDeclined
    | PaymentCancelled
    | PrintDone
    | TimerExpired
    | PrinterChanged
)

# ---------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Screen:
    """What the customer display shows."""

    title: str
    amount_fen: int | None = None
    lines: tuple[str, ...] = ()
    qr: str | None = None


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
class Reprint:
    """Print an approved sale again: the one with this order number, or the latest."""

    out_trade_no: str | None = None


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds_key: str  # which configured duration: "awaiting", "qr_expiry", "result_hold"


@dataclass(frozen=True)
class CancelTimer:
    name: str


Effect = (
    Show
    | StartCodePayment
    | StartNativePayment
    | CancelPayment
    | PrintReceipt
    | Reprint
    | StartTimer
    | CancelTimer
)

# ---------------------------------------------------------------------------- state


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.RECOVERING
    amount_fen: int = 0
    attempt: int = 0  # numbers payment attempts so late results of an old one are ignored
    code_url: str | None = None
    notice: str = ""  # one line for the cashier (declined reason, refused scan ...)
    last_sale: ApprovedSale | None = None
    printer_notice: str = ""  # why the printer needs attention; empty when it is fine
    code_rules: CodeRules = DEFAULT_RULES  # which scans are payment codes (from config)


Outcome = tuple[State, list[Effect]]
Handler = Callable[[State, Event], Outcome | None]  # None: the event is ignored

TIMER_AWAITING = "awaiting"
TIMER_QR = "qr_expiry"
TIMER_RESULT = "result_hold"

# ---------------------------------------------------------------------------- screens


def idle_screen() -> Screen:
    return Screen("欢迎光临 Welcome")


def amount_screen(fen: int) -> Screen:
    return Screen("请输入金额 Enter amount", fen)


def _show(state: State, screen: Screen, *more: Effect) -> Outcome:
    return state, [Show(screen), *more]


# ---------------------------------------------------------------------------- handlers


def _digit(state: State, event: Event) -> Outcome:
    assert isinstance(event, KeyPressed)
    start = 0 if state.phase is not Phase.ENTERING_AMOUNT else state.amount_fen
    fen = money.append_digit(start, int(event.key))
    new = replace(state, phase=Phase.ENTERING_AMOUNT, amount_fen=fen, notice="", code_url=None)
    effects: list[Effect] = [Show(amount_screen(fen))]
    if state.phase is Phase.APPROVED or state.phase is Phase.DECLINED:
        effects.insert(0, CancelTimer(TIMER_RESULT))
    return new, effects


def _backspace(state: State, event: Event) -> Outcome:
    fen = money.drop_digit(state.amount_fen)
    return _show(replace(state, amount_fen=fen), amount_screen(fen))


def _clear(state: State, event: Event) -> Outcome:
    return _show(replace(state, amount_fen=0), amount_screen(0))


def _to_idle(state: State, event: Event) -> Outcome:
    effects: list[Effect] = [Show(idle_screen())]
    if state.phase is Phase.AWAITING_PAYMENT:
        effects.append(CancelTimer(TIMER_AWAITING))
    if state.phase in (Phase.APPROVED, Phase.DECLINED):
        effects.append(CancelTimer(TIMER_RESULT))
    return replace(state, phase=Phase.IDLE, amount_fen=0, code_url=None, notice=""), effects


def _recovered(state: State, event: Event) -> Outcome:
    return _show(replace(state, phase=Phase.IDLE), idle_screen())


def _enter_amount(state: State, event: Event) -> Outcome | None:
    if state.amount_fen <= 0:
        return None
    screen = Screen("请确认金额 Confirm amount", state.amount_fen, ("Enter 确认 confirm",))
    return _show(replace(state, phase=Phase.CONFIRMING), screen)


def _back_to_entry(state: State, event: Event) -> Outcome:
    return _show(replace(state, phase=Phase.ENTERING_AMOUNT), amount_screen(state.amount_fen))


def _confirm(state: State, event: Event) -> Outcome:
    return _show(
        replace(state, phase=Phase.AWAITING_PAYMENT, notice=""),
        _awaiting_screen(state.amount_fen),
        StartTimer(TIMER_AWAITING, TIMER_AWAITING),
    )


def _awaiting_screen(fen: int, notice: str = "") -> Screen:
    lines = ("请出示付款码 Show your payment code", "或扫码支付 or scan our QR")
    return Screen("请付款 Please pay", fen, (notice, *lines) if notice else lines)


def _scanned(state: State, event: Event) -> Outcome:
    assert isinstance(event, CodeScanned)
    code = event.code.strip()
    verdict = state.code_rules.classify(code)
    if verdict.refusal:
        notice = verdict.refusal
        return _show(replace(state, notice=notice), _awaiting_screen(state.amount_fen, notice))
    attempt = state.attempt + 1
    new = replace(state, phase=Phase.CHARGING_CODE, attempt=attempt, notice="")
    screen = Screen("正在支付 Charging", state.amount_fen, ("请稍候 Please wait",))
    return new, [
        CancelTimer(TIMER_AWAITING),
        Show(screen),
        StartCodePayment(attempt, state.amount_fen, code),
    ]


def _show_qr(state: State, event: Event) -> Outcome:
    attempt = state.attempt + 1
    new = replace(state, phase=Phase.SHOWING_QR, attempt=attempt, code_url=None, notice="")
    screen = Screen("正在生成二维码 Creating QR", state.amount_fen)
    return new, [
        CancelTimer(TIMER_AWAITING),
        Show(screen),
        StartNativePayment(attempt, state.amount_fen),
        StartTimer(TIMER_QR, TIMER_QR),
    ]


def _is_current(state: State, event: Event) -> bool:
    return getattr(event, "attempt", None) == state.attempt


def _qr_ready(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event) or state.code_url is not None:
        return None
    assert isinstance(event, QrReady)
    screen = Screen(
        "微信扫码支付 Scan with WeChat", state.amount_fen, ("Esc 取消 cancel",), qr=event.code_url
    )
    return _show(replace(state, code_url=event.code_url), screen)


def _pending(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event):
        return None
    screen = Screen(
        "等待顾客输入密码 Customer entering password", state.amount_fen, ("请稍候 Please wait",)
    )
    return _show(state, screen)


def _cancel_payment(state: State, event: Event) -> Outcome:
    screen = Screen("正在取消 Cancelling", state.amount_fen, ("请稍候 Please wait",))
    effects: list[Effect] = [Show(screen), CancelPayment(state.attempt)]
    if state.phase is Phase.SHOWING_QR:
        effects.insert(0, CancelTimer(TIMER_QR))
    return replace(state, phase=Phase.CANCELLING), effects


def _qr_expired(state: State, event: Event) -> Outcome:
    return _cancel_payment(state, event)


def _approved(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event):
        return None
    assert isinstance(event, PaymentApproved)
    sale = event.sale
    screen = Screen("支付成功 Approved", sale.amount_fen, ("正在打印 Printing receipt",))
    effects: list[Effect] = [Show(screen), PrintReceipt(sale)]
    if state.phase is Phase.SHOWING_QR:
        effects.insert(0, CancelTimer(TIMER_QR))
    new = replace(state, phase=Phase.PRINTING, code_url=None, last_sale=sale, notice="")
    return new, effects


def _declined(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event):
        return None
    assert isinstance(event, PaymentDeclined)
    effects: list[Effect] = [
        Show(Screen("支付失败 Declined", state.amount_fen, (event.reason,))),
        StartTimer(TIMER_RESULT, TIMER_RESULT),
    ]
    if state.phase is Phase.SHOWING_QR:
        effects.insert(0, CancelTimer(TIMER_QR))
    new = replace(state, phase=Phase.DECLINED, code_url=None, notice=event.reason)
    return new, effects


def _cancelled(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event):
        return None
    screen = Screen("已取消 Cancelled", state.amount_fen, ("未扣款 Nobody was charged",))
    new = replace(state, phase=Phase.DECLINED, code_url=None, notice="cancelled")
    return new, [Show(screen), StartTimer(TIMER_RESULT, TIMER_RESULT)]


def _printed(state: State, event: Event) -> Outcome:
    assert isinstance(event, PrintDone)
    sale = state.last_sale
    fen = sale.amount_fen if sale else None
    lines = (
        ("请取小票 Please take your receipt",)
        if event.ok
        else (
            "打印机需要处理 Printer needs attention",
            event.message,
        )
    )
    notice = "" if event.ok else event.message
    return replace(state, phase=Phase.APPROVED, notice=notice), [
        Show(Screen("支付成功 Approved", fen, lines)),
        StartTimer(TIMER_RESULT, TIMER_RESULT),
    ]


def _reprint(state: State, event: Event) -> Outcome:
    return state, [Reprint()]


def _scanned_while_idle(state: State, event: Event) -> Outcome | None:
    """A receipt's QR (its order number) scanned while idle: print that receipt again."""
    assert isinstance(event, CodeScanned)
    code = event.code.strip()
    if not code or state.code_rules.classify(code).provider is not None:
        return None  # a payment code needs an amount first
    return state, [Reprint(code)]


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Rule:
    source: Phase
    trigger: str
    targets: tuple[Phase, ...]
    handler: Handler


P = Phase
_WAITING_FOR_RESULT = (P.CHARGING_CODE, P.SHOWING_QR, P.CANCELLING)

RULES: tuple[Rule, ...] = (
    Rule(P.RECOVERING, "RecoveryDone", (P.IDLE,), _recovered),
    Rule(P.IDLE, "digit", (P.ENTERING_AMOUNT,), _digit),
    Rule(P.ENTERING_AMOUNT, "digit", (P.ENTERING_AMOUNT,), _digit),
    Rule(P.ENTERING_AMOUNT, "backspace", (P.ENTERING_AMOUNT,), _backspace),
    Rule(P.ENTERING_AMOUNT, "clear", (P.ENTERING_AMOUNT,), _clear),
    Rule(P.ENTERING_AMOUNT, "enter", (P.CONFIRMING,), _enter_amount),
    Rule(P.ENTERING_AMOUNT, "cancel", (P.IDLE,), _to_idle),
    Rule(P.CONFIRMING, "enter", (P.AWAITING_PAYMENT,), _confirm),
    Rule(P.CONFIRMING, "backspace", (P.ENTERING_AMOUNT,), _back_to_entry),
    Rule(P.CONFIRMING, "cancel", (P.IDLE,), _to_idle),
    Rule(P.AWAITING_PAYMENT, "CodeScanned", (P.CHARGING_CODE, P.AWAITING_PAYMENT), _scanned),
    Rule(P.AWAITING_PAYMENT, "qr", (P.SHOWING_QR,), _show_qr),
    Rule(P.AWAITING_PAYMENT, "cancel", (P.IDLE,), _to_idle),
    Rule(P.AWAITING_PAYMENT, f"TimerExpired:{TIMER_AWAITING}", (P.IDLE,), _to_idle),
    Rule(P.CHARGING_CODE, "PaymentPending", (P.CHARGING_CODE,), _pending),
    Rule(P.CHARGING_CODE, "cancel", (P.CANCELLING,), _cancel_payment),
    Rule(P.SHOWING_QR, "QrReady", (P.SHOWING_QR,), _qr_ready),
    Rule(P.SHOWING_QR, "cancel", (P.CANCELLING,), _cancel_payment),
    Rule(P.SHOWING_QR, f"TimerExpired:{TIMER_QR}", (P.CANCELLING,), _qr_expired),
    *(Rule(src, "PaymentApproved", (P.PRINTING,), _approved) for src in _WAITING_FOR_RESULT),
    *(Rule(src, "PaymentDeclined", (P.DECLINED,), _declined) for src in _WAITING_FOR_RESULT),
    *(Rule(src, "PaymentCancelled", (P.DECLINED,), _cancelled) for src in _WAITING_FOR_RESULT),
    Rule(P.PRINTING, "PrintDone", (P.APPROVED,), _printed),
    Rule(P.IDLE, "reprint", (P.IDLE,), _reprint),
    Rule(P.IDLE, "CodeScanned", (P.IDLE,), _scanned_while_idle),
    Rule(P.APPROVED, "reprint", (P.APPROVED,), _reprint),
    Rule(P.APPROVED, "digit", (P.ENTERING_AMOUNT,), _digit),
    Rule(P.APPROVED, "enter", (P.IDLE,), _to_idle),
    Rule(P.APPROVED, "cancel", (P.IDLE,), _to_idle),
    Rule(P.APPROVED, f"TimerExpired:{TIMER_RESULT}", (P.IDLE,), _to_idle),
    Rule(P.DECLINED, "digit", (P.ENTERING_AMOUNT,), _digit),
    Rule(P.DECLINED, "enter", (P.IDLE,), _to_idle),
    Rule(P.DECLINED, "cancel", (P.IDLE,), _to_idle),
    Rule(P.DECLINED, f"TimerExpired:{TIMER_RESULT}", (P.IDLE,), _to_idle),
)

_BY_TRIGGER: dict[tuple[Phase, str], Rule] = {(r.source, r.trigger): r for r in RULES}


def trigger_of(event: Event) -> str:
    """The name RULES use for an event: key class for keys, class name (plus timer) otherwise."""
    if isinstance(event, KeyPressed):
        return "digit" if event.key.isdigit() and len(event.key) == 1 else event.key
    if isinstance(event, TimerExpired):
        return f"TimerExpired:{event.name}"
    return type(event).__name__


def step(state: State, event: Event) -> Outcome:
    """Advance the sale by one event. Events with no rule in the current phase are ignored."""
    if isinstance(event, PrinterChanged):
        return replace(state, printer_notice="" if event.ok else event.message), []
    rule = _BY_TRIGGER.get((state.phase, trigger_of(event)))
    if rule is None:
        return state, []
    outcome = rule.handler(state, event)
    return outcome if outcome is not None else (state, [])


def initial_state(code_rules: CodeRules = DEFAULT_RULES) -> State:
    return State(code_rules=code_rules)


def mermaid() -> str:
    """The state diagram as Mermaid source, drawn from RULES."""
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.RECOVERING}"]
    seen: set[tuple[Phase, Phase, str]] = set()
    for rule in RULES:
        for target in rule.targets:
            edge = (rule.source, target, rule.trigger)
            if edge not in seen:
                seen.add(edge)
                label = rule.trigger.replace(":", " ")
                lines.append(f"    {rule.source} --> {target} : {label}")
    return "\n".join(lines) + "\n"
