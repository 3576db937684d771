"""The sale as a pure state machine: `step(state, event) -> (state, effects)`.

No I/O, clock or randomness here: time arrives as TimerExpired events, payment results as events
posted by the runtime. Every transition is declared once in RULES; the diagram is drawn from it.
Over ~400 lines on purpose: states, events, effects and rules stay in one file so the whole
sale can be read, tested and drawn from one place.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from pos_terminal import money
from pos_terminal.payments.codes import DEFAULT_RULES, CodeRules
from pos_terminal.ports import Screen

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
    IN_DOUBT = "IN_DOUBT"  # something failed after the request left: resolving; do not charge again
    EXCEPTION = "EXCEPTION"  # WeChat contradicts the journal: a supervisor must settle it
    PRINTING = "PRINTING"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    SUPERVISOR_PIN = "SUPERVISOR_PIN"  # refunds need the supervisor's PIN
    REFUND_ORDER = "REFUND_ORDER"  # scan the receipt's QR or type the order number
    REFUND_AMOUNT = "REFUND_AMOUNT"  # full by default, or key a partial amount
    REFUNDING = "REFUNDING"
    REFUND_RESULT = "REFUND_RESULT"


@dataclass(frozen=True)
class KeyPressed:
    key: str  # "0".."9" or a Key value


@dataclass(frozen=True)
class CodeScanned:
    code: str


@dataclass(frozen=True)
class RecoveryDone:
    resolved: int
    attention: int = 0  # payments a supervisor must settle (a refund owed, a contradiction)


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
class TimerExpired:
    name: str


@dataclass(frozen=True)
class OrderFound:
    """The sale a refund was asked for, and how much of it may still be refunded."""

    out_trade_no: str
    refundable_fen: int


@dataclass(frozen=True)
class OrderNotFound:
    reason: str


@dataclass(frozen=True)
class RefundFinished:
    ok: bool  # accepted by WeChat (SUCCESS, or PROCESSING: the money is on its way)
    message: str
    in_doubt: bool = False  # journaled, outcome not known yet: it is finished in the background


@dataclass(frozen=True)
class PrinterChanged:
    """The printer failed or came back; it is news in every phase, so RULES do not list it."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class DeviceNotice:
    """A device's worker (or a background task) failed and restarts, or with an empty message
    works again; news in every phase, like PrinterChanged."""

    device: str
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
    | PaymentInDoubt
    | PaymentException
    | PrintDone
    | TimerExpired
    | PrinterChanged
    | OrderFound
    | OrderNotFound
    | RefundFinished
    | DeviceNotice
)

# ---------------------------------------------------------------------------- effects


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
class FindRefundable:
    """Look a sale up by its order number, or by the trailing digits the cashier typed."""

    query: str


@dataclass(frozen=True)
class StartRefund:
    out_trade_no: str
    amount_fen: int


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
    | FindRefundable
    | StartRefund
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
    device_notices: tuple[tuple[str, str], ...] = ()  # (device, trouble) for each one in trouble
    code_rules: CodeRules = DEFAULT_RULES  # which scans are payment codes (from config)
    supervisor_pin_sha256: str = ""  # from config; empty: refunds are off
    entry: str = ""  # digits typed for the PIN or the order number
    refund_order: str | None = None
    refundable_fen: int = 0


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


_RESULT_PHASES = (Phase.APPROVED, Phase.DECLINED, Phase.REFUND_RESULT)


def _digit(state: State, event: Event) -> Outcome:
    assert isinstance(event, KeyPressed)
    start = 0 if state.phase is not Phase.ENTERING_AMOUNT else state.amount_fen
    fen = money.append_digit(start, int(event.key))
    new = replace(state, phase=Phase.ENTERING_AMOUNT, amount_fen=fen, notice="", code_url=None)
    effects: list[Effect] = [Show(amount_screen(fen))]
    if state.phase in _RESULT_PHASES:
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
    if state.phase in _RESULT_PHASES:
        effects.append(CancelTimer(TIMER_RESULT))
    idle = replace(state, phase=Phase.IDLE, amount_fen=0, code_url=None, notice="", entry="")
    return replace(idle, refund_order=None, refundable_fen=0), effects


def _recovered(state: State, event: Event) -> Outcome:
    if not isinstance(event, RecoveryDone) or not event.attention:
        return _show(replace(state, phase=Phase.IDLE), idle_screen())
    notice = f"{event.attention} 笔交易需主管处理 payment(s) need a supervisor: see the journal"
    idle = replace(state, phase=Phase.IDLE, notice=notice)
    return _show(idle, Screen("欢迎光临 Welcome", lines=(notice,)))


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


def _in_doubt(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event) or not isinstance(event, PaymentInDoubt):
        return None
    title = "支付结果未知 Payment in doubt"
    return _do_not_charge_again(state, Phase.IN_DOUBT, title, "正在核对 Resolving", event.reason)


def _exception(state: State, event: Event) -> Outcome | None:
    if not _is_current(state, event) or not isinstance(event, PaymentException):
        return None
    title = "交易异常 Payment exception"
    return _do_not_charge_again(
        state, Phase.EXCEPTION, title, "请联系主管 Call a supervisor", event.reason
    )


def _do_not_charge_again(
    state: State, phase: Phase, title: str, advice: str, reason: str
) -> Outcome:
    """A payment whose money may have moved: the cashier must not ask the customer again."""
    screen = Screen(title, state.amount_fen, ("请勿重复收款 Do not charge again", advice, reason))
    effects: list[Effect] = [Show(screen)]
    if state.phase is Phase.SHOWING_QR:
        effects.insert(0, CancelTimer(TIMER_QR))
    return replace(state, phase=phase, code_url=None, notice=reason), effects


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


# ---------------------------------------------------------------------------- refunds

MAX_ENTRY = 24
PIN_SCREEN = "主管密码 Supervisor PIN"
ORDER_SCREEN = "扫描小票二维码或输入单号 Scan the receipt QR or type the order no."


def _refund_asked(state: State, event: Event) -> Outcome:
    if not state.supervisor_pin_sha256:
        notice = "退款未开通 Refunds need staff.supervisor_pin_sha256 in the config"
        return _show(replace(state, notice=notice), Screen("欢迎光临 Welcome", lines=(notice,)))
    new = replace(state, phase=Phase.SUPERVISOR_PIN, entry="", notice="")
    return _show(new, Screen(PIN_SCREEN))


def _entry_digit(state: State, event: Event) -> Outcome:
    assert isinstance(event, KeyPressed)
    return _entry_shown(replace(state, entry=(state.entry + event.key)[:MAX_ENTRY]))


def _entry_backspace(state: State, event: Event) -> Outcome:
    return _entry_shown(replace(state, entry=state.entry[:-1]))


def _entry_shown(state: State) -> Outcome:
    if state.phase is Phase.SUPERVISOR_PIN:
        return _show(state, Screen(PIN_SCREEN, lines=("*" * len(state.entry),)))
    return _show(state, Screen(ORDER_SCREEN, lines=(state.entry, state.notice)))


def _pin_entered(state: State, event: Event) -> Outcome:
    digest = hashlib.sha256(state.entry.encode()).hexdigest()
    if not hmac.compare_digest(digest, state.supervisor_pin_sha256):
        notice = "主管密码错误 Wrong supervisor PIN"
        new = replace(state, phase=Phase.IDLE, entry="", notice=notice)
        return _show(new, Screen("欢迎光临 Welcome", lines=(notice,)))
    new = replace(state, phase=Phase.REFUND_ORDER, entry="", notice="")
    return _show(new, Screen(ORDER_SCREEN))


def _order_scanned(state: State, event: Event) -> Outcome | None:
    assert isinstance(event, CodeScanned)
    code = event.code.strip()
    return (replace(state, entry=""), [FindRefundable(code)]) if code else None


def _order_typed(state: State, event: Event) -> Outcome | None:
    return (replace(state, entry=""), [FindRefundable(state.entry)]) if state.entry else None


def _order_not_found(state: State, event: Event) -> Outcome:
    assert isinstance(event, OrderNotFound)
    return _entry_shown(replace(state, notice=event.reason))


def _order_found(state: State, event: Event) -> Outcome:
    assert isinstance(event, OrderFound)
    new = replace(
        state,
        phase=Phase.REFUND_AMOUNT,
        refund_order=event.out_trade_no,
        refundable_fen=event.refundable_fen,
        amount_fen=event.refundable_fen,
        entry="",
        notice="",
    )
    return _show(new, _refund_amount_screen(new))


def _refund_amount_screen(state: State) -> Screen:
    limit = money.format_yuan(state.refundable_fen)
    return Screen(
        "退款金额 Refund amount",
        state.amount_fen,
        (f"{state.refund_order}", f"最多 at most {limit}", "Enter 确认 confirm", state.notice),
    )


def _refund_digit(state: State, event: Event) -> Outcome:
    assert isinstance(event, KeyPressed)
    start = state.amount_fen if state.entry else 0  # the first digit replaces the full amount
    new = replace(state, amount_fen=money.append_digit(start, int(event.key)), entry="typed")
    return _show(new, _refund_amount_screen(new))


def _refund_backspace(state: State, event: Event) -> Outcome:
    new = replace(state, amount_fen=money.drop_digit(state.amount_fen), entry="typed")
    return _show(new, _refund_amount_screen(new))


def _refund_confirmed(state: State, event: Event) -> Outcome:
    if not 0 < state.amount_fen <= state.refundable_fen:
        new = replace(state, notice="金额超出可退范围 Amount outside what may be refunded")
        return _show(new, _refund_amount_screen(new))
    assert state.refund_order is not None
    screen = Screen("正在退款 Refunding", state.amount_fen, ("请稍候 Please wait",))
    new = replace(state, phase=Phase.REFUNDING, notice="")
    return new, [Show(screen), StartRefund(state.refund_order, state.amount_fen)]


def _refund_finished(state: State, event: Event) -> Outcome:
    assert isinstance(event, RefundFinished)
    title = "退款已受理 Refund accepted" if event.ok else "退款失败 Refund failed"
    if event.in_doubt:
        title = "退款结果未知 Refund in doubt"
    new = replace(state, phase=Phase.REFUND_RESULT, notice=event.message, refund_order=None)
    return new, [
        Show(Screen(title, state.amount_fen, (event.message,))),
        StartTimer(TIMER_RESULT, TIMER_RESULT),
    ]


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Rule:
    source: Phase
    trigger: str
    targets: tuple[Phase, ...]
    handler: Handler


P = Phase
_WAITING_FOR_RESULT = (P.CHARGING_CODE, P.SHOWING_QR, P.CANCELLING, P.IN_DOUBT)

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
    *(Rule(src, "PaymentException", (P.EXCEPTION,), _exception) for src in _WAITING_FOR_RESULT),
    *(
        Rule(src, "PaymentInDoubt", (P.IN_DOUBT,), _in_doubt)
        for src in _WAITING_FOR_RESULT
        if src is not P.IN_DOUBT
    ),
    Rule(P.EXCEPTION, "enter", (P.IDLE,), _to_idle),
    Rule(P.EXCEPTION, "cancel", (P.IDLE,), _to_idle),
    Rule(P.PRINTING, "PrintDone", (P.APPROVED,), _printed),
    Rule(P.IDLE, "reprint", (P.IDLE,), _reprint),
    Rule(P.IDLE, "CodeScanned", (P.IDLE,), _scanned_while_idle),
    Rule(P.IDLE, "refund", (P.SUPERVISOR_PIN, P.IDLE), _refund_asked),
    Rule(P.SUPERVISOR_PIN, "digit", (P.SUPERVISOR_PIN,), _entry_digit),
    Rule(P.SUPERVISOR_PIN, "backspace", (P.SUPERVISOR_PIN,), _entry_backspace),
    Rule(P.SUPERVISOR_PIN, "enter", (P.REFUND_ORDER, P.IDLE), _pin_entered),
    Rule(P.SUPERVISOR_PIN, "cancel", (P.IDLE,), _to_idle),
    Rule(P.REFUND_ORDER, "CodeScanned", (P.REFUND_ORDER,), _order_scanned),
    Rule(P.REFUND_ORDER, "digit", (P.REFUND_ORDER,), _entry_digit),
    Rule(P.REFUND_ORDER, "backspace", (P.REFUND_ORDER,), _entry_backspace),
    Rule(P.REFUND_ORDER, "enter", (P.REFUND_ORDER,), _order_typed),
    Rule(P.REFUND_ORDER, "OrderFound", (P.REFUND_AMOUNT,), _order_found),
    Rule(P.REFUND_ORDER, "OrderNotFound", (P.REFUND_ORDER,), _order_not_found),
    Rule(P.REFUND_ORDER, "cancel", (P.IDLE,), _to_idle),
    Rule(P.REFUND_AMOUNT, "digit", (P.REFUND_AMOUNT,), _refund_digit),
    Rule(P.REFUND_AMOUNT, "backspace", (P.REFUND_AMOUNT,), _refund_backspace),
    Rule(P.REFUND_AMOUNT, "enter", (P.REFUNDING, P.REFUND_AMOUNT), _refund_confirmed),
    Rule(P.REFUND_AMOUNT, "cancel", (P.IDLE,), _to_idle),
    Rule(P.REFUNDING, "RefundFinished", (P.REFUND_RESULT,), _refund_finished),
    Rule(P.REFUND_RESULT, "digit", (P.ENTERING_AMOUNT,), _digit),
    Rule(P.REFUND_RESULT, "enter", (P.IDLE,), _to_idle),
    Rule(P.REFUND_RESULT, "cancel", (P.IDLE,), _to_idle),
    Rule(P.REFUND_RESULT, f"TimerExpired:{TIMER_RESULT}", (P.IDLE,), _to_idle),
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
    if isinstance(event, DeviceNotice):
        others = tuple(n for n in state.device_notices if n[0] != event.device)
        notices = (*others, (event.device, event.message)) if event.message else others
        return replace(state, device_notices=notices), []
    rule = _BY_TRIGGER.get((state.phase, trigger_of(event)))
    if rule is None:
        return state, []
    outcome = rule.handler(state, event)
    return outcome if outcome is not None else (state, [])


def initial_state(code_rules: CodeRules = DEFAULT_RULES, supervisor_pin_sha256: str = "") -> State:
    return State(code_rules=code_rules, supervisor_pin_sha256=supervisor_pin_sha256)


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
