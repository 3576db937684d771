"""Typed rule tables: which trigger moves a sub-machine on from which phase, and where to.

A trigger is a key (`Key`, or `DIGIT` for any of 0-9), a timer (`Timer`) or an event class; a
table that names anything else, a phase outside its mode, or a trigger twice for one phase fails
when its module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from pos_terminal.machine.effects import Effect, Timer
from pos_terminal.machine.events import EVENT_TYPES, Event, KeyPressed, TimerExpired
from pos_terminal.machine.exits import Exit
from pos_terminal.machine.state import ModeBase, Phase, State
from pos_terminal.ports import Key


class Digit(Enum):
    """Any of the keys 0-9."""

    DIGIT = "digit"


DIGIT = Digit.DIGIT
Trigger = Key | Digit | Timer | type[object]  # the class: one of the Event union
M = TypeVar("M", bound=ModeBase)
E = TypeVar("E")
EnumT = TypeVar("EnumT", bound=Enum)


@dataclass(frozen=True)
class Next:
    """Where a rule leads. `redraw`: the runtime shows `render` of the new state."""

    state: State
    effects: tuple[Effect, ...] = ()
    redraw: bool = True

    def then(self, more: Next) -> Next:
        return Next(more.state, self.effects + more.effects, self.redraw or more.redraw)


@dataclass(frozen=True)
class Leave:
    """A sub-machine is finished: its parent takes `exit` from `state` on."""

    state: State
    exit: Exit
    effects: tuple[Effect, ...] = ()


Outcome = Next | Leave | None  # None: the event is ignored


@dataclass(frozen=True)
class Rule(Generic[M, E]):
    sources: tuple[Phase, ...]
    trigger: Trigger
    targets: tuple[Phase, ...]  # (): the phase stays as it is
    handler: Callable[[State, M, E], Outcome]
    event: type[E]


def _phases(p: Phase | Iterable[Phase]) -> tuple[Phase, ...]:
    return (p,) if isinstance(p, Phase) else tuple(p)


def key(
    sources: Phase | Iterable[Phase],
    trigger: Key | Digit,
    targets: Phase | Iterable[Phase],
    handler: Callable[[State, M, KeyPressed], Outcome],
) -> Rule[M, KeyPressed]:
    return Rule(_phases(sources), trigger, _phases(targets), handler, KeyPressed)


def timer(
    sources: Phase | Iterable[Phase],
    trigger: Timer,
    targets: Phase | Iterable[Phase],
    handler: Callable[[State, M, TimerExpired], Outcome],
) -> Rule[M, TimerExpired]:
    return Rule(_phases(sources), trigger, _phases(targets), handler, TimerExpired)


def on(
    sources: Phase | Iterable[Phase],
    trigger: type[E],
    targets: Phase | Iterable[Phase],
    handler: Callable[[State, M, E], Outcome],
) -> Rule[M, E]:
    return Rule(_phases(sources), trigger, _phases(targets), handler, trigger)


@dataclass(frozen=True)
class Table(Generic[M]):
    """One sub-machine's rules, all for phases of `mode`."""

    name: str
    mode: type[M]
    rules: tuple[Rule[M, Any], ...]

    def __post_init__(self) -> None:
        seen: set[tuple[Phase, Trigger]] = set()
        for rule in self.rules:
            _check_trigger(self.name, rule.trigger)
            for source in rule.sources:
                if source not in self.mode.PHASES:
                    raise ValueError(f"{self.name}: {source} is not a {self.mode.__name__} phase")
                if (source, rule.trigger) in seen:
                    raise ValueError(f"{self.name}: {source} has two rules for {rule.trigger}")
                seen.add((source, rule.trigger))

    def fire(self, rule: Rule[M, Any], state: State, event: Event) -> Outcome:
        """Run one of this table's rules; the index guarantees the mode and event types."""
        mode = state.mode
        if isinstance(mode, self.mode) and isinstance(event, rule.event):
            return rule.handler(state, mode, event)
        raise TypeError(f"{self.name}: {rule.trigger} fired in {type(mode).__name__} by {event!r}")


def _check_trigger(table: str, trigger: object) -> None:
    if isinstance(trigger, Key | Digit | Timer):
        return
    if trigger is KeyPressed or trigger is TimerExpired or trigger not in EVENT_TYPES:
        raise ValueError(f"{table}: {trigger!r} is not a trigger (a Key, DIGIT, a Timer or event)")


def trigger_for(event: Event) -> Trigger | None:
    """The trigger an event fires; None for a key or timer no rule can name."""
    match event:
        case KeyPressed(key=k):
            if len(k) == 1 and k.isdigit():
                return DIGIT
            return _member(Key, k)
        case TimerExpired(name=name):
            return _member(Timer, name)
    return type(event)


def _member(kind: type[EnumT], value: str) -> EnumT | None:
    try:
        return kind(value)
    except ValueError:
        return None


def trigger_of(event: Event) -> str:
    """The name of the trigger an event fires (for the log)."""
    trigger = trigger_for(event)
    return type(event).__name__ if trigger is None else label(trigger)


def label(trigger: Trigger) -> str:
    """How the diagram and the log name a trigger."""
    if isinstance(trigger, Timer):
        return f"TimerExpired {trigger.value}"
    if isinstance(trigger, Key | Digit):
        return str(trigger.value)
    return trigger.__name__
