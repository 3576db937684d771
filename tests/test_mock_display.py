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


def test_the_cashier_side_shows_its_own_screen_and_the_customer_never_sees_it() -> None:
    display = MockDisplay()
    prompt, neutral = Screen("主管密码 Supervisor PIN"), Screen("请稍候 Please wait")
    display.show(neutral, prompt)
    assert (display.current, display.cashier) == (neutral, prompt)
    display.show(Screen("欢迎光临 Welcome"))  # no cashier screen: both sides show the same
    assert display.cashier == display.current == Screen("欢迎光临 Welcome")
    assert prompt not in display.history
