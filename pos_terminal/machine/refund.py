"""A refund, once a supervisor authorised it: find the sale, key the amount (the whole
refundable amount unless another is keyed), refund, show the outcome; exits done."""

from __future__ import annotations

from dataclasses import replace

from pos_terminal import money
from pos_terminal.machine.effects import CancelTimer, FindRefundable, Reprint, StartRefund, Timer
from pos_terminal.machine.effects import start_timer as start
from pos_terminal.machine.events import (
    CodeScanned,
    KeyPressed,
    OrderFound,
    OrderNotFound,
    RefundFinished,
    TimerExpired,
)
from pos_terminal.machine.exits import RefundDone
from pos_terminal.machine.keying import key_amount
from pos_terminal.machine.rules import DIGIT, Leave, Next, Outcome, Table, key, on, timer
from pos_terminal.machine.state import (
    REFUND_REASONS,
    SUPERVISOR,
    Phase,
    Purpose,
    Refund,
    Sale,
    State,
)
from pos_terminal.machine.supervisor import ask
from pos_terminal.ports import Key

P = Phase
MAX_ORDER_ENTRY = 24
REFUNDS_OFF = "退款未开通 Refunds need staff.supervisor_pin_sha256 in the config"
OUTSIDE = "金额超出可退范围 Amount outside what may be refunded"


def _asked(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    if not state.session.supervisor_pin_sha256:
        return Next(replace(state, mode=replace(sale, notice=REFUNDS_OFF)))
    return ask(state, Purpose.REFUND)


def start_refund(state: State) -> Next:
    """The supervisor authorised a refund: ask for the sale."""
    return Next(replace(state, mode=Refund(P.REFUND_ORDER, authorised_by=SUPERVISOR)))


def _go(state: State, refund: Refund, *effects: FindRefundable | StartRefund) -> Next:
    return Next(replace(state, mode=refund), effects)


def _order_digit(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    entry = (refund.order_entry + event.key)[:MAX_ORDER_ENTRY]
    return _go(state, replace(refund, order_entry=entry))


def _order_backspace(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    return _go(state, replace(refund, order_entry=refund.order_entry[:-1]))


def _look_up(state: State, refund: Refund, query: str) -> Outcome:
    if not query:
        return None
    return Next(
        replace(state, mode=replace(refund, order_entry="")), (FindRefundable(query),), False
    )


def _order_scanned(state: State, refund: Refund, event: CodeScanned) -> Outcome:
    return _look_up(state, refund, event.code.strip())


def _order_typed(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    return _look_up(state, refund, refund.order_entry)


def _not_found(state: State, refund: Refund, event: OrderNotFound) -> Outcome:
    return _go(state, replace(refund, notice=event.reason))


def _found(state: State, refund: Refund, event: OrderFound) -> Outcome:
    fen = event.refundable_fen
    found = replace(
        refund,
        phase=P.REFUND_AMOUNT,
        notice="",
        out_trade_no=event.out_trade_no,
        refundable_fen=fen,
        refund_fen=fen,
    )
    return _go(state, found)


def _amount_key(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    """A digit, the point or backspace; a first digit or point replaces the amount offered,
    a first backspace edits it."""
    edits = refund.keyed or event.key == Key.BACKSPACE
    before = money.Keyed(refund.refund_fen, refund.decimals) if edits else money.Keyed()
    keyed, refused = key_amount(before, event.key)
    return _go(
        state,
        replace(refund, refund_fen=keyed.fen, decimals=keyed.decimals, keyed=True, notice=refused),
    )


def _next_reason(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    """The refund key on the amount screen picks the next reason, round the list."""
    known = refund.reason in REFUND_REASONS
    following = (REFUND_REASONS.index(refund.reason) + 1) % len(REFUND_REASONS) if known else 0
    return _go(state, replace(refund, reason=REFUND_REASONS[following]))


def _confirm(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    if not 0 < refund.refund_fen <= refund.refundable_fen:
        return _go(state, replace(refund, notice=OUTSIDE))
    refunding = replace(refund, phase=P.REFUNDING, notice="")
    start = StartRefund(refund.out_trade_no, refund.refund_fen, refund.reason, refund.authorised_by)
    return _go(state, refunding, start)


def _finished(state: State, refund: Refund, event: RefundFinished) -> Outcome:
    shown = replace(refund, phase=P.REFUND_RESULT, outcome=event)
    return Next(replace(state, mode=shown), (start(Timer.RESULT),))


def _reprint(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    """`r` on the result: print this refund's slip again (once it has a number)."""
    number = refund.outcome.refund_no
    return Next(state, (Reprint(number),), redraw=False) if number else None


def _done(state: State, refund: Refund, event: KeyPressed | TimerExpired) -> Outcome:
    stops = (CancelTimer(Timer.RESULT),) if refund.phase is P.REFUND_RESULT else ()
    return Leave(state, RefundDone(), stops)


def _next_sale(state: State, refund: Refund, event: KeyPressed) -> Outcome:
    """A digit on the result starts the next sale with it."""
    return Leave(state, RefundDone(then_key=event.key), (CancelTimer(Timer.RESULT),))


_ASKING = (P.REFUND_ORDER, P.REFUND_AMOUNT)
_TO_SUPERVISOR = (P.SUPERVISOR_PIN, P.SUPERVISOR_WAIT, P.SUPERVISOR_LOCKED, P.IDLE)
START = Table("refund start", Sale, (key(P.IDLE, Key.REFUND, _TO_SUPERVISOR, _asked),))
REFUND = Table(
    "refund",
    Refund,
    (
        on(P.REFUND_ORDER, CodeScanned, (), _order_scanned),
        key(P.REFUND_ORDER, DIGIT, (), _order_digit),
        key(P.REFUND_ORDER, Key.BACKSPACE, (), _order_backspace),
        key(P.REFUND_ORDER, Key.ENTER, (), _order_typed),
        on(P.REFUND_ORDER, OrderFound, P.REFUND_AMOUNT, _found),
        on(P.REFUND_ORDER, OrderNotFound, (), _not_found),
        key(P.REFUND_AMOUNT, DIGIT, (), _amount_key),
        key(P.REFUND_AMOUNT, Key.POINT, (), _amount_key),
        key(P.REFUND_AMOUNT, Key.BACKSPACE, (), _amount_key),
        key(P.REFUND_AMOUNT, Key.ENTER, (P.REFUNDING, P.REFUND_AMOUNT), _confirm),
        key(P.REFUND_AMOUNT, Key.REFUND, (), _next_reason),
        on(P.REFUNDING, RefundFinished, P.REFUND_RESULT, _finished),
        key(P.REFUND_RESULT, DIGIT, P.ENTERING_AMOUNT, _next_sale),
        key((*_ASKING, P.REFUND_RESULT), Key.CANCEL, P.IDLE, _done),
        key(P.REFUND_RESULT, Key.ENTER, P.IDLE, _done),
        key(P.REFUND_RESULT, Key.REPRINT, (), _reprint),
        timer(P.REFUND_RESULT, Timer.RESULT, P.IDLE, _done),
    ),
)
