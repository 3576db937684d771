"""Money: integer fen in, exact text out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_terminal import money


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (1234, "¥12.34"), (100000, "¥1000.00"), (-5, "-¥0.05")],
)
def test_format(fen: int, text: str) -> None:
    assert money.format_yuan(fen) == text


def test_receipts_use_the_full_width_sign() -> None:
    assert money.format_receipt_yuan(1234) == "￥12.34"


@given(st.integers(min_value=0, max_value=999_999_999))
def test_parse_inverts_format(fen: int) -> None:
    assert money.parse_yuan(money.format_yuan(fen)) == fen


@pytest.mark.parametrize("bad", ["", "abc", "1.234", "-1", "1e3", "12.3.4"])
def test_parse_refuses_what_is_not_an_amount(bad: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        money.parse_yuan(bad)


@given(st.lists(st.integers(min_value=0, max_value=9), max_size=15))
def test_keypad_entry_never_exceeds_nine_digits(digits: list[int]) -> None:
    fen = 0
    for d in digits:
        fen = money.append_digit(fen, d)
    assert 0 <= fen < 10**money.MAX_AMOUNT_DIGITS
    assert money.drop_digit(fen) == fen // 10


@pytest.mark.parametrize(
    ("amount", "ppm", "cap", "fee"),
    [
        (10000, 6000, None, 60),
        (83, 6000, None, 0),
        (84, 6000, None, 1),
        (1_000_000, 6000, 2000, 2000),
    ],
)
def test_fee_rounds_half_up_then_caps(amount: int, ppm: int, cap: int | None, fee: int) -> None:
    assert money.rate_fee(amount, ppm, cap) == fee
