"""Supervisor authorisation: the PIN, checked against its configured SHA-256; exits authorised,
or not (cancelled). A wrong PIN costs a pause before the next (doubling), and the fifth in a row
locks the PIN out for a while; each wrong PIN after that locks it again. Time reaches the machine
only as the PIN timers' expiries: the lockout counts down a minute per `pin_lockout` timer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from itertools import islice

from pos_terminal.machine.effects import CancelTimer, Timer
from pos_terminal.machine.effects import start_timer as start
from pos_terminal.machine.events import KeyPressed, TimerExpired
from pos_terminal.machine.exits import Authorised, NotAuthorised
from pos_terminal.machine.rules import DIGIT, Leave, Next, Outcome, Table, key, timer
from pos_terminal.machine.state import ModeBase, Phase, PinGuard, Purpose, State, Supervisor
from pos_terminal.ports import Key
from pos_terminal.retry import Backoff

P = Phase
MAX_PIN = 24
MAX_WRONG_PINS = 5  # in a row: the PIN is locked out
LOCKOUT_MINUTES = 15
MINUTE_S = 60.0
PIN_PAUSES = Backoff(first_s=2.0, max_s=60.0)  # after wrong PIN 1, 2, 3, 4: 2, 4, 8, 16 s


def pause_after(wrong: int) -> float:
    """The pause before the PIN is taken again after `wrong` wrong PINs in a row."""
    return list(islice(PIN_PAUSES.pauses(), wrong))[-1]


def tries_left(guard: PinGuard) -> int:
    """Wrong PINs that may still be typed before the lockout (after one: a single try)."""
    return max(1, MAX_WRONG_PINS - guard.wrong)


def ask(state: State, purpose: Purpose) -> Next:
    """Ask for the PIN; while a pause or a lockout runs, say so instead."""
    guard = state.session.pin_guard
    if guard.locked_minutes:
        return Next(replace(state, mode=Supervisor(P.SUPERVISOR_LOCKED, purpose)))
    if guard.pausing:
        return _pause(state, purpose)
    return Next(replace(state, mode=Supervisor(purpose=purpose)))


def _guarded(state: State, guard: PinGuard) -> State:
    return replace(state, session=replace(state.session, pin_guard=guard))


def _pause(state: State, purpose: Purpose) -> Next:
    """The pause after a wrong PIN; asked again, it starts over (leaving does not shorten it)."""
    seconds = pause_after(state.session.pin_guard.wrong)
    waiting = replace(state, mode=Supervisor(P.SUPERVISOR_WAIT, purpose))
    return Next(waiting, (start(Timer.PIN_PAUSE, seconds),))


def _digit(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    pin = (asking.pin + event.key)[:MAX_PIN]
    return Next(replace(state, mode=replace(asking, pin=pin)))


def _backspace(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    return Next(replace(state, mode=replace(asking, pin=asking.pin[:-1])))


def _enter(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    if not asking.pin:
        return None  # an Enter before any digit is no attempt
    digest = hashlib.sha256(asking.pin.encode()).hexdigest()
    if hmac.compare_digest(digest, state.session.supervisor_pin_sha256):
        return Leave(_guarded(state, PinGuard()), Authorised(asking.purpose))
    wrong = state.session.pin_guard.wrong + 1
    if wrong >= MAX_WRONG_PINS:
        locked = _guarded(state, PinGuard(wrong, locked_minutes=LOCKOUT_MINUTES))
        shown = replace(locked, mode=Supervisor(P.SUPERVISOR_LOCKED, asking.purpose))
        return Next(shown, (start(Timer.PIN_LOCKOUT, MINUTE_S),))
    return _pause(_guarded(state, PinGuard(wrong, pausing=True)), asking.purpose)


def _paused(state: State, waiting: Supervisor, event: TimerExpired) -> Outcome:
    guard = replace(state.session.pin_guard, pausing=False)
    return Next(replace(_guarded(state, guard), mode=Supervisor(purpose=waiting.purpose)))


def _cancel(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    stops = (CancelTimer(Timer.PIN_PAUSE),) if asking.phase is P.SUPERVISOR_WAIT else ()
    return Leave(state, NotAuthorised(), stops)


def _locked_enter(state: State, locked: Supervisor, event: KeyPressed) -> Outcome:
    """Enter on the lockout screen: back to idle, or the PIN prompt once the lockout is over."""
    if state.session.pin_guard.locked_minutes:
        return Leave(state, NotAuthorised())
    return Next(replace(state, mode=Supervisor(purpose=locked.purpose)))


def _minute_passed(state: State, mode: ModeBase, event: TimerExpired) -> Outcome:
    """A minute of the lockout has passed, whatever the terminal is doing meanwhile."""
    guard = state.session.pin_guard
    if not guard.locked_minutes:
        return None
    left = guard.locked_minutes - 1
    effects = (start(Timer.PIN_LOCKOUT, MINUTE_S),) if left else ()
    counted = _guarded(state, replace(guard, locked_minutes=left))
    return Next(counted, effects, redraw=state.phase is P.SUPERVISOR_LOCKED)


_ASKING = (P.SUPERVISOR_PIN, P.SUPERVISOR_WAIT, P.SUPERVISOR_LOCKED)
SUPERVISOR = Table(
    "supervisor authorisation",
    Supervisor,
    (
        key(P.SUPERVISOR_PIN, DIGIT, (), _digit),
        key(P.SUPERVISOR_PIN, Key.BACKSPACE, (), _backspace),
        key(
            P.SUPERVISOR_PIN,
            Key.ENTER,
            (P.REFUND_ORDER, P.SUPERVISOR_WAIT, P.SUPERVISOR_LOCKED),
            _enter,
        ),
        timer(P.SUPERVISOR_WAIT, Timer.PIN_PAUSE, P.SUPERVISOR_PIN, _paused),
        key(P.SUPERVISOR_LOCKED, Key.ENTER, (P.SUPERVISOR_PIN, P.IDLE), _locked_enter),
        key(_ASKING, Key.CANCEL, P.IDLE, _cancel),
    ),
)
LOCKOUT = Table(
    "supervisor lockout",
    ModeBase,
    (timer(tuple(Phase), Timer.PIN_LOCKOUT, (), _minute_passed),),
)
