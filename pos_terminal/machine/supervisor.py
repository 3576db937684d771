"""Supervisor authorisation: the PIN, checked against its configured SHA-256; exits authorised,
or not (a wrong PIN, or cancelled)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from pos_terminal.machine.events import KeyPressed
from pos_terminal.machine.exits import Authorised, NotAuthorised
from pos_terminal.machine.rules import DIGIT, Leave, Next, Outcome, Table, key
from pos_terminal.machine.state import Phase, Purpose, State, Supervisor
from pos_terminal.ports import Key

P = Phase
MAX_PIN = 24
WRONG_PIN = "主管密码错误 Wrong supervisor PIN"


def ask(state: State, purpose: Purpose) -> Next:
    return Next(replace(state, mode=Supervisor(purpose=purpose)))


def _digit(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    pin = (asking.pin + event.key)[:MAX_PIN]
    return Next(replace(state, mode=replace(asking, pin=pin)))


def _backspace(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    return Next(replace(state, mode=replace(asking, pin=asking.pin[:-1])))


def _enter(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    digest = hashlib.sha256(asking.pin.encode()).hexdigest()
    if hmac.compare_digest(digest, state.session.supervisor_pin_sha256):
        return Leave(state, Authorised(asking.purpose))
    return Leave(state, NotAuthorised(WRONG_PIN))


def _cancel(state: State, asking: Supervisor, event: KeyPressed) -> Outcome:
    return Leave(state, NotAuthorised())


SUPERVISOR = Table(
    "supervisor authorisation",
    Supervisor,
    (
        key(P.SUPERVISOR_PIN, DIGIT, (), _digit),
        key(P.SUPERVISOR_PIN, Key.BACKSPACE, (), _backspace),
        key(P.SUPERVISOR_PIN, Key.ENTER, (P.REFUND_ORDER, P.IDLE), _enter),
        key(P.SUPERVISOR_PIN, Key.CANCEL, P.IDLE, _cancel),
    ),
)
