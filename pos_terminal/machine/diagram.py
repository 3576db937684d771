"""The machine as a Mermaid state diagram, drawn from the rule tables: one composite state per
sub-machine; a rule that leaves its sub-machine is drawn as its exit and an edge to the next one.
"""

from __future__ import annotations

from pos_terminal.machine.core import TABLES
from pos_terminal.machine.rules import label
from pos_terminal.machine.state import Phase, Refund, Sale, Supervisor, Tender

COMPOSITES = (Sale, Tender, Supervisor, Refund)
_OWNER = {phase: mode.__name__ for mode in COMPOSITES for phase in mode.PHASES}
NEWS = (
    "PrinterChanged and DeviceNotice update the notices, "
    "TimerExpired pin_lockout counts the PIN lockout down, in every state"
)


def mermaid() -> str:
    """The state diagram as Mermaid source."""
    top: list[str] = [f"[*] --> {Phase.RECOVERING}", f"note right of {Phase.RECOVERING} : {NEWS}"]
    inner: dict[str, list[str]] = {mode.__name__: [] for mode in COMPOSITES}
    for table in TABLES:
        for rule in table.rules:
            if set(rule.sources) == set(Phase):
                continue  # the news, in the note
            text = label(rule.trigger)
            for source in rule.sources:
                for target in rule.targets or (source,):
                    _edge(top, inner, source, target, text)
    lines = ["stateDiagram-v2", *(f"    {line}" for line in top)]
    for name, edges in inner.items():
        lines += [f"    state {name} {{", *(f"        {e}" for e in edges), "    }"]
    return "\n".join(lines) + "\n"


def _edge(top: list[str], inner: dict[str, list[str]], src: Phase, dst: Phase, text: str) -> None:
    here, there = _OWNER.get(src), _OWNER.get(dst)
    if here == there and here is not None:
        _add(inner[here], f"{src} --> {dst} : {text}")
        return
    if here is not None:
        _add(inner[here], f"{src} --> [*] : {text}")
    if there is not None:
        _add(inner[there], f"[*] --> {dst}")
    _add(top, f"{here or src} --> {there or dst} : {text}")


def _add(lines: list[str], line: str) -> None:
    if line not in lines:
        lines.append(line)
