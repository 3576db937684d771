"""Keying an amount (a sale's or a refund's): digits and the point, refused keys said why."""

from __future__ import annotations

from pos_terminal import money
from pos_terminal.ports import Key

TOO_LARGE = f"最多 at most {money.format_yuan(money.MAX_KEYED_FEN)}"
TWO_DECIMALS = "最多两位小数 Two decimals at most"


def key_amount(keyed: money.Keyed, key: str) -> tuple[money.Keyed, str]:
    """`keyed` after a digit, the point or backspace, and "" or why the key was refused."""
    if key == Key.BACKSPACE:
        return keyed.backspace(), ""
    if key == Key.POINT and keyed.decimals is not None:
        return keyed, ""  # a second point changes nothing
    after = keyed.point() if key == Key.POINT else keyed.digit(int(key))
    if after is not None:
        return after, ""
    return keyed, TWO_DECIMALS if keyed.decimals == 2 else TOO_LARGE
