"""The mock customer display (hw_mocks.display): the latest screen and a bounded history."""

from __future__ import annotations

from hw_mocks.display import HISTORY, MockDisplay
from pos_terminal.ports import Screen


def test_a_long_run_keeps_only_the_latest_screens() -> None:
    display = MockDisplay()
    for n in range(HISTORY + 50):
        display.show(Screen(f"screen {n}"))
    assert len(display.history) == HISTORY
    assert display.history[0].title == "screen 50"
    assert display.current == Screen(f"screen {HISTORY + 49}")
