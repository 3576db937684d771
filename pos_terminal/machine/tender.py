"""What every tender shares: one attempt at a time, cancel, in doubt, and its results.

Each tender (payment code, QR, later cards) posts the same result events for its attempt; the
rules here turn them into the tender's exit for the sale, or into IN_DOUBT while it is resolved.
A tender's own file adds its start rule, its own phase's rules and `result_rules(its phase)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pos_terminal.machine.effects import CancelPayment, CancelTimer, Effect, StartTimer, Timer
from pos_terminal.machine.events import (
    ForAttempt,
    KeyPressed,
    PaymentApproved,
    PaymentCancelled,
    PaymentDeclined,
    PaymentException,
    PaymentInDoubt,
    TimerExpired,
)
from pos_terminal.machine.exits import (
    TenderCancelled,
    TenderContradicted,
    TenderDeclined,
    TenderPaid,
)
from pos_terminal.machine.rules import Leave, Next, Outcome, Rule, Table, key, on
from pos_terminal.machine.state import Phase, Sale, State, Tender, TenderKind
from pos_terminal.ports import Key

P = Phase


def begin(
    state: State, sale: Sale, kind: TenderKind, start: Callable[[int], Effect], *more: StartTimer
) -> Next:
    """A new attempt of `kind` for the sale's amount; `start(attempt)` asks the provider."""
    attempt = state.session.attempt + 1
    tender = Tender(kind.phase, kind=kind, amount_fen=sale.amount_fen)
    session = replace(state.session, attempt=attempt)
    return Next(State(session, tender), (CancelTimer(Timer.AWAITING), start(attempt), *more))


def current(state: State, event: ForAttempt) -> bool:
    """Whether `event` answers the attempt in flight (not a late answer of an older one)."""
    return event.attempt == state.session.attempt


def _leaving(tender: Tender) -> tuple[Effect, ...]:
    return tender.kind.on_leave() if tender.phase is tender.kind.phase else ()


def cancel(state: State, tender: Tender, event: KeyPressed | TimerExpired) -> Outcome:
    """The cashier cancelled, or the tender expired: close or reverse the attempt."""
    cancelling = replace(tender, phase=P.CANCELLING)
    effects = (*_leaving(tender), CancelPayment(state.session.attempt))
    return Next(replace(state, mode=cancelling), effects)


def _approved(state: State, tender: Tender, event: PaymentApproved) -> Outcome:
    return Leave(state, TenderPaid(event.sale), _leaving(tender)) if current(state, event) else None


def _declined(state: State, tender: Tender, event: PaymentDeclined) -> Outcome:
    if not current(state, event):
        return None
    return Leave(state, TenderDeclined(tender.amount_fen, event.reason), _leaving(tender))


def _cancelled(state: State, tender: Tender, event: PaymentCancelled) -> Outcome:
    if not current(state, event):
        return None
    return Leave(state, TenderCancelled(tender.amount_fen), _leaving(tender))


def _exception(state: State, tender: Tender, event: PaymentException) -> Outcome:
    if not current(state, event):
        return None
    return Leave(state, TenderContradicted(tender.amount_fen, event.reason), _leaving(tender))


def _in_doubt(state: State, tender: Tender, event: PaymentInDoubt) -> Outcome:
    """The money may have moved: resolve it, and tell the cashier not to charge again."""
    if not current(state, event):
        return None
    doubt = replace(tender, phase=P.IN_DOUBT, notice=event.reason, code_url=None)
    return Next(replace(state, mode=doubt), _leaving(tender))


def result_rules(*sources: Phase) -> tuple[Rule[Tender, Any], ...]:
    """The rules for the shared results, in `sources` (a tender's own phase)."""
    doubtful = tuple(s for s in sources if s is not P.IN_DOUBT)
    return (
        on(sources, PaymentApproved, P.PRINTING, _approved),
        on(sources, PaymentDeclined, P.DECLINED, _declined),
        on(sources, PaymentCancelled, P.CANCELLED, _cancelled),
        on(sources, PaymentException, P.EXCEPTION, _exception),
        *((on(doubtful, PaymentInDoubt, P.IN_DOUBT, _in_doubt),) if doubtful else ()),
    )


def cancel_rule(source: Phase) -> Rule[Tender, KeyPressed]:
    return key(source, Key.CANCEL, P.CANCELLING, cancel)


TENDER = Table("tender", Tender, result_rules(P.CANCELLING, P.IN_DOUBT))
