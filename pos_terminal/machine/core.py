"""The top level: the global rules (news in every phase, recovery) and every sub-machine's table,
one rule per (phase, trigger); a sub-machine's exit goes to its parent. `step` is the machine.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pos_terminal.machine import code_tender, qr_tender, refund
from pos_terminal.machine.effects import CancelTimer, Effect, PrintRecoverySlip
from pos_terminal.machine.events import (
    DeviceNotice,
    Event,
    KeyPressed,
    PrinterChanged,
    RecoveryDone,
    RecoveryProgress,
)
from pos_terminal.machine.exits import (
    Authorised,
    Exit,
    NotAuthorised,
    RefundDone,
    TenderCancelled,
    TenderContradicted,
    TenderDeclined,
    TenderPaid,
)
from pos_terminal.machine.rules import (
    Leave,
    Next,
    Outcome,
    Rule,
    Table,
    Trigger,
    key,
    on,
    trigger_for,
)
from pos_terminal.machine.sale import SALE, after_tender, idle
from pos_terminal.machine.screens import render
from pos_terminal.machine.state import Booting, ModeBase, Phase, Purpose, Session, State
from pos_terminal.machine.supervisor import LOCKOUT, SUPERVISOR
from pos_terminal.machine.tender import TENDER
from pos_terminal.payment_codes import DEFAULT_RULES, CodeRules
from pos_terminal.ports import Key

ATTENTION = "{} 笔交易需主管处理 payment(s) need a supervisor: see the journal"


def _printer(state: State, mode: ModeBase, event: PrinterChanged) -> Outcome:
    notice = "" if event.ok else event.message
    return Next(replace(state, session=replace(state.session, printer_notice=notice)), (), False)


def _device(state: State, mode: ModeBase, event: DeviceNotice) -> Outcome:
    others = tuple(n for n in state.session.device_notices if n[0] != event.device)
    notices = (*others, (event.device, event.message)) if event.message else others
    return Next(replace(state, session=replace(state.session, device_notices=notices)), (), False)


def _attention(count: int) -> str:
    return ATTENTION.format(count) if count else ""


def _progress(state: State, booting: Booting, event: RecoveryProgress) -> Outcome:
    counting = replace(booting, position=event.position, total=event.total)
    return Next(replace(state, mode=counting))


def _recovered(state: State, booting: Booting, event: RecoveryDone) -> Outcome:
    """Sales start at once when nothing was in doubt; otherwise the cashier reads the summary
    first (and the merchant gets a slip when money moved while nobody watched)."""
    if not event.rows:
        return idle(state, _attention(event.attention))
    summary = Booting(Phase.RECOVERED, rows=event.rows, attention=event.attention)
    moved = any(r.resolution.moved_money for r in event.rows)
    return Next(replace(state, mode=summary), (PrintRecoverySlip(event.rows),) if moved else ())


def _acknowledged(state: State, booting: Booting, event: KeyPressed) -> Outcome:
    return idle(state, _attention(booting.attention))


GLOBAL = Table(
    "global",
    ModeBase,
    (
        on(tuple(Phase), PrinterChanged, (), _printer),
        on(tuple(Phase), DeviceNotice, (), _device),
    ),
)
RECOVERY = Table(
    "recovery",
    Booting,
    (
        on(Phase.RECOVERING, RecoveryProgress, (), _progress),
        on(Phase.RECOVERING, RecoveryDone, (Phase.RECOVERED, Phase.IDLE), _recovered),
        key(Phase.RECOVERED, Key.ENTER, Phase.IDLE, _acknowledged),
    ),
)
TABLES: tuple[Table[Any], ...] = (
    GLOBAL,
    RECOVERY,
    SALE,
    code_tender.START,
    qr_tender.START,
    refund.START,
    TENDER,
    code_tender.CODE_TENDER,
    qr_tender.QR_TENDER,
    SUPERVISOR,
    LOCKOUT,
    refund.REFUND,
)


def _index() -> dict[tuple[Phase, Trigger], tuple[Table[Any], Rule[Any, Any]]]:
    """Every (phase, trigger) to its one rule; a second rule for the same pair fails the import."""
    index: dict[tuple[Phase, Trigger], tuple[Table[Any], Rule[Any, Any]]] = {}
    for table in TABLES:
        for rule in table.rules:
            for source in rule.sources:
                if (source, rule.trigger) in index:
                    other = index[source, rule.trigger][0].name
                    raise ValueError(
                        f"{table.name} and {other} both rule {rule.trigger} in {source}"
                    )
                index[source, rule.trigger] = (table, rule)
    return index


_INDEX = _index()
_AUTHORISED = {Purpose.REFUND: refund.start_refund}


def _dispatch(state: State, event: Event) -> Next | None:
    trigger = trigger_for(event)
    found = _INDEX.get((state.phase, trigger)) if trigger is not None else None
    if found is None:
        return None
    table, rule = found
    outcome = table.fire(rule, state, event)
    if isinstance(outcome, Leave):
        return Next(outcome.state, outcome.effects).then(_to_parent(outcome.state, outcome.exit))
    return outcome


def _to_parent(state: State, exit: Exit) -> Next:
    """A finished sub-machine's exit, taken by its parent."""
    match exit:
        case TenderPaid() | TenderDeclined() | TenderCancelled() | TenderContradicted():
            return after_tender(state, exit)
        case Authorised(purpose=purpose):
            return _AUTHORISED[purpose](state)
        case NotAuthorised():
            return idle(state)
        case RefundDone(then_key=str() as digit):
            back = idle(state)
            return back.then(_dispatch(back.state, KeyPressed(digit)) or back)
        case RefundDone():
            return idle(state)


def step(state: State, event: Event) -> tuple[State, list[Effect]]:
    """Advance by one event. Events with no rule in the current phase are ignored. A redrawn
    screen is shown after the timers that stop and before anything that starts."""
    nxt = _dispatch(state, event)
    if nxt is None:
        return state, []
    if not nxt.redraw:
        return nxt.state, list(nxt.effects)
    stops = [e for e in nxt.effects if isinstance(e, CancelTimer)]
    rest = [e for e in nxt.effects if not isinstance(e, CancelTimer)]
    return nxt.state, [*stops, render(nxt.state), *rest]


def initial_state(
    code_rules: CodeRules = DEFAULT_RULES,
    supervisor_pin_sha256: str = "",
    large_amount_fen: int = 0,
) -> State:
    return State(Session(code_rules, supervisor_pin_sha256, large_amount_fen=large_amount_fen))
