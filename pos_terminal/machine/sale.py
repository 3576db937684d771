"""Sale entry: key the amount, confirm it, wait for a tender, then hold the tender's result."""

from __future__ import annotations

from dataclasses import replace

from pos_terminal import money
from pos_terminal.machine.effects import CancelTimer, Effect, PrintReceipt, Reprint, Timer
from pos_terminal.machine.effects import start_timer as start
from pos_terminal.machine.events import CodeScanned, KeyPressed, PrintDone, TimerExpired
from pos_terminal.machine.exits import (
    TenderCancelled,
    TenderContradicted,
    TenderDeclined,
    TenderExit,
    TenderPaid,
)
from pos_terminal.machine.keying import key_amount
from pos_terminal.machine.rules import DIGIT, Next, Outcome, Table, key, on, timer
from pos_terminal.machine.state import Phase, Sale, State
from pos_terminal.ports import Key

P = Phase
_HOLDING = (P.APPROVED, P.DECLINED, P.CANCELLED)  # results on screen until the result timer
_EDITING = (P.IDLE, P.ENTERING_AMOUNT, *_HOLDING)
_CONFIRMING = (P.CONFIRMING, P.CONFIRMING_LARGE)
_CANCELLABLE = (P.ENTERING_AMOUNT, *_CONFIRMING, P.AWAITING_PAYMENT, *_HOLDING, P.EXCEPTION)


def _stop_timers(phase: Phase) -> tuple[Effect, ...]:
    if phase is P.AWAITING_PAYMENT:
        return (CancelTimer(Timer.AWAITING),)
    return (CancelTimer(Timer.RESULT),) if phase in _HOLDING else ()


def idle(state: State, notice: str = "", leaving: Phase | None = None) -> Next:
    """Back to IDLE, stopping the timer of the phase left."""
    stops = _stop_timers(leaving) if leaving else ()
    return Next(replace(state, mode=Sale(P.IDLE, notice=notice)), stops)


def _to_idle(state: State, sale: Sale, event: KeyPressed | TimerExpired) -> Outcome:
    return idle(state, leaving=sale.phase)


def _key(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    """A digit, the point or backspace while keying; from a result on screen, a new sale."""
    keying = sale.phase is P.ENTERING_AMOUNT
    before = money.Keyed(sale.amount_fen, sale.decimals) if keying else money.Keyed()
    keyed, refused = key_amount(before, event.key)
    entry = Sale(P.ENTERING_AMOUNT, keyed.fen, keyed.decimals, notice=refused)
    return Next(replace(state, mode=entry), _stop_timers(sale.phase))


def _clear(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    return Next(replace(state, mode=Sale(P.ENTERING_AMOUNT)))


def _enter_amount(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    if sale.amount_fen <= 0:
        return None
    return Next(replace(state, mode=replace(sale, phase=P.CONFIRMING, notice="")))


def _back_to_entry(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    return Next(replace(state, mode=replace(sale, phase=P.ENTERING_AMOUNT)))


def _await_payment(state: State, fen: int, notice: str = "") -> Next:
    awaiting = Sale(P.AWAITING_PAYMENT, fen, notice=notice)
    return Next(replace(state, mode=awaiting), (start(Timer.AWAITING),))


def _confirm(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    large = state.session.large_amount_fen
    if sale.phase is P.CONFIRMING and 0 < large <= sale.amount_fen:
        return Next(replace(state, mode=replace(sale, phase=P.CONFIRMING_LARGE)))
    return _await_payment(state, sale.amount_fen)


def _pay_again(state: State, sale: Sale, event: KeyPressed | TimerExpired) -> Outcome:
    """A declined sale goes back to the payment prompt with its amount until it is cancelled."""
    stop = (CancelTimer(Timer.RESULT),) if isinstance(event, KeyPressed) else ()
    return Next(state, stop).then(_await_payment(state, sale.amount_fen, sale.notice))


def _printed(state: State, sale: Sale, event: PrintDone) -> Outcome:
    notice = "" if event.ok else event.message
    approved = replace(sale, phase=P.APPROVED, notice=notice, printed=event.ok)
    return Next(replace(state, mode=approved), (start(Timer.RESULT),))


def _reprint(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    return Next(state, (Reprint(),), redraw=False)


def _scanned_while_idle(state: State, sale: Sale, event: CodeScanned) -> Outcome:
    """A receipt's QR (its order number) scanned while idle: print that receipt again."""
    code = event.code.strip()
    if not code or state.session.code_rules.classify(code).provider is not None:
        return None  # a payment code needs an amount first
    return Next(state, (Reprint(code),), redraw=False)


def after_tender(state: State, result: TenderExit) -> Next:
    """Take a tender's exit: print an approved sale, or hold why nothing was charged."""
    match result:
        case TenderPaid(sale=paid):
            session = replace(state.session, last_sale=paid)
            printing = Sale(P.PRINTING, state.amount_fen)
            return Next(State(session, printing), (PrintReceipt(paid),))
        case TenderDeclined(amount_fen=fen, reason=reason):
            declined = Sale(P.DECLINED, fen, notice=reason)
        case TenderCancelled(amount_fen=fen):
            declined = Sale(P.CANCELLED, fen)
        case TenderContradicted(amount_fen=fen, reason=reason):
            return Next(replace(state, mode=Sale(P.EXCEPTION, fen, notice=reason)))
    return Next(replace(state, mode=declined), (start(Timer.RESULT),))


SALE = Table(
    "sale entry",
    Sale,
    (
        key(_EDITING, DIGIT, P.ENTERING_AMOUNT, _key),
        key(_EDITING, Key.POINT, P.ENTERING_AMOUNT, _key),
        key(P.ENTERING_AMOUNT, Key.BACKSPACE, P.ENTERING_AMOUNT, _key),
        key(P.ENTERING_AMOUNT, Key.CLEAR, P.ENTERING_AMOUNT, _clear),
        key(P.ENTERING_AMOUNT, Key.ENTER, P.CONFIRMING, _enter_amount),
        key(_CONFIRMING, Key.ENTER, (P.CONFIRMING_LARGE, P.AWAITING_PAYMENT), _confirm),
        key(_CONFIRMING, Key.BACKSPACE, P.ENTERING_AMOUNT, _back_to_entry),
        key(_CANCELLABLE, Key.CANCEL, P.IDLE, _to_idle),
        timer(P.AWAITING_PAYMENT, Timer.AWAITING, P.IDLE, _to_idle),
        on(P.PRINTING, PrintDone, P.APPROVED, _printed),
        key((P.APPROVED, P.CANCELLED, P.EXCEPTION), Key.ENTER, P.IDLE, _to_idle),
        timer((P.APPROVED, P.CANCELLED), Timer.RESULT, P.IDLE, _to_idle),
        key(P.DECLINED, Key.ENTER, P.AWAITING_PAYMENT, _pay_again),
        timer(P.DECLINED, Timer.RESULT, P.AWAITING_PAYMENT, _pay_again),
        key((P.IDLE, P.APPROVED), Key.REPRINT, (), _reprint),
        on(P.IDLE, CodeScanned, (), _scanned_while_idle),
    ),
)
