"""Money as integer fen: parsing, formatting and fee rounding. No floats anywhere."""

from __future__ import annotations

import re

MAX_AMOUNT_DIGITS = 9  # ¥9,999,999.99: the keypad accepts at most nine digits
_YUAN = re.compile(r"^\s*[¥￥]?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$")


def format_yuan(fen: int, *, symbol: str = "¥") -> str:
    """Format fen as yuan with two decimals: 1234 -> '¥12.34', -5 -> '-¥0.05'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{symbol}{whole}.{cents:02d}"


def format_receipt_yuan(fen: int) -> str:
    """Receipts print the full-width yuan sign: U+00A5 is not in GBK, U+FFE5 is."""
    return format_yuan(fen, symbol="￥")


def parse_yuan(text: str) -> int:
    """Parse '12.34', '¥12.3' or '12' into fen.

    Raises:
        ValueError: the text is not a non-negative yuan amount with at most two decimals.
    """
    match = _YUAN.match(text)
    if match is None:
        raise ValueError(f"not an amount in yuan: {text!r}")
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


def append_digit(fen: int, digit: int) -> int:
    """Cashier keypad entry: digits shift in from the right ("1","2","3","4" -> 1234 fen).

    Returns the amount unchanged when a tenth digit would not fit.
    """
    if not 0 <= digit <= 9:
        raise ValueError(f"not a digit: {digit}")
    shifted = fen * 10 + digit
    return fen if shifted >= 10**MAX_AMOUNT_DIGITS else shifted


def drop_digit(fen: int) -> int:
    """Keypad backspace: remove the last digit entered."""
    return fen // 10


def rate_fee(amount_fen: int, rate_ppm: int, cap_fen: int | None = None) -> int:
    """Fee at a rate in parts per million, rounded half up to the fen, then capped."""
    if amount_fen < 0 or rate_ppm < 0:
        raise ValueError("amount and rate must not be negative")
    fee = (amount_fen * rate_ppm + 500_000) // 1_000_000
    return fee if cap_fen is None else min(fee, cap_fen)
