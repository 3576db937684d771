"""Money: integer fen in, exact text out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_terminal import money


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (1234, "¥12.34"),
        (100000, "¥1,000.00"),
        (123456789, "¥1,234,567.89"),
        (-5, "-¥0.05"),
    ],
)
def test_format(fen: int, text: str) -> None:
    assert money.format_yuan(fen) == text


def test_receipts_use_the_full_width_sign() -> None:
    assert money.format_receipt_yuan(1234) == "￥12.34"


@given(st.integers(min_value=0, max_value=999_999_999))
def test_parse_inverts_format(fen: int) -> None:
    assert money.parse_yuan(money.format_yuan(fen)) == fen


@pytest.mark.parametrize("bad", ["", "abc", "1.234", "-1", "1e3", "12.3.4", "1,23", "12,345,678"])
def test_parse_refuses_what_is_not_an_amount(bad: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        money.parse_yuan(bad)


def _keys(text: str) -> money.Keyed | None:
    keyed: money.Keyed | None = money.Keyed()
    for char in text:
        if keyed is None:
            return None
        keyed = keyed.point() if char == "." else keyed.digit(int(char))
    return keyed


@pytest.mark.parametrize(
    ("keys", "fen"),
    [
        ("1234", 1234),
        ("12.5", 1250),
        ("12.05", 1205),
        (".5", 50),
        ("0.07", 7),
        ("12.", 1200),
        ("999999999", 999_999_999),
        ("9999999.99", 999_999_999),
    ],
)
def test_keying_shifts_fen_in_until_the_point_then_fills_jiao_and_fen(keys: str, fen: int) -> None:
    keyed = _keys(keys)
    assert keyed is not None and keyed.fen == fen


@pytest.mark.parametrize("keys", ["1234567890", "12.345", "100000000.", "10000000."])
def test_a_key_that_would_not_fit_is_refused(keys: str) -> None:
    assert _keys(keys[:-1]) is not None
    assert _keys(keys) is None


@pytest.mark.parametrize(
    ("keys", "after"), [("12.34", "12.3"), ("12.3", "12."), ("12.", "12"), ("1234", "123")]
)
def test_backspace_takes_back_the_last_key(keys: str, after: str) -> None:
    keyed, expected = _keys(keys), _keys(after)
    assert keyed is not None and keyed.backspace() == expected


@given(st.text(alphabet="0123456789.", max_size=16))
def test_keying_never_exceeds_nine_digits_and_backspace_undoes_each_key(text: str) -> None:
    keyed, history = money.Keyed(), [money.Keyed()]
    for char in text:
        after = keyed.point() if char == "." else keyed.digit(int(char))
        if after is not None and after != keyed:
            keyed = after
            history.append(keyed)
    assert 0 <= keyed.fen <= money.MAX_KEYED_FEN
    while len(history) > 1:
        history.pop()
        keyed = keyed.backspace()
        assert keyed == history[-1]


# From the People's Bank's rules for filling in bills (正确填写票据和结算凭证的基本规定), and the
# issue's example.
@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (1_200_000, "壹万贰仟元整"),
        (140_950, "壹仟肆佰零玖元伍角"),
        (600_714, "陆仟零柒元壹角肆分"),
        (10_700_053, "壹拾万柒仟元零伍角叁分"),
        (168_032, "壹仟陆佰捌拾元零叁角贰分"),
        (1_640_902, "壹万陆仟肆佰零玖元零贰分"),
        (32_504, "叁佰贰拾伍元零肆分"),
        (1_000, "壹拾元整"),
        (1_000_100, "壹万零壹元整"),
        (100_010_000, "壹佰万零壹佰元整"),
        (5, "伍分"),
        (50, "伍角"),
        (0, "零元整"),
        (999_999_999, "玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_amounts_in_words_as_bills_write_them(fen: int, words: str) -> None:
    assert money.in_words(fen) == words


@given(st.integers(min_value=1, max_value=10**12))
def test_words_never_double_a_zero_nor_end_on_one(fen: int) -> None:
    words = money.in_words(fen)
    assert "零零" not in words and not words.endswith("零")
    assert words.endswith("整") == (fen % 100 == 0)


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
