"""Money as integer fen: parsing, formatting and fee rounding. No floats anywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_AMOUNT_DIGITS = 9  # ¥9,999,999.99: the keypad accepts at most nine digits
MAX_KEYED_FEN = 10**MAX_AMOUNT_DIGITS - 1
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万亿")
_YUAN = re.compile(r"^\s*[¥￥]?\s*(\d{1,7}|\d{1,3},\d{3}|\d,\d{3},\d{3})(?:\.(\d{1,2}))?\s*$")


def format_yuan(fen: int, *, symbol: str = "¥") -> str:
    """Format fen as yuan with two decimals: 123456 -> '¥1,234.56', -5 -> '-¥0.05'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{symbol}{whole:,}.{cents:02d}"


def format_receipt_yuan(fen: int) -> str:
    """Receipts print the full-width yuan sign: U+00A5 is not in GBK, U+FFE5 is."""
    return format_yuan(fen, symbol="￥")


def parse_yuan(text: str) -> int:
    """Parse '12.34', '¥12.3', '1,234' or '12' into fen.

    Raises:
        ValueError: the text is not a non-negative yuan amount with at most two decimals.
    """
    match = _YUAN.match(text)
    if match is None:
        raise ValueError(f"not an amount in yuan: {text!r}")
    whole, cents = match.group(1).replace(",", ""), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


@dataclass(frozen=True)
class Keyed:
    """An amount as the cashier keys it. Digits shift in from the right as fen ("1234" is
    ¥12.34) until the point key; the digits keyed so far are then yuan, and the next two fill
    jiao and fen ("12.5" is ¥12.50). A key that cannot be taken gives None.
    """

    fen: int = 0
    decimals: int | None = None  # digits keyed after the point; None: no point yet

    def digit(self, digit: int) -> Keyed | None:
        """None when a tenth digit, or a third after the point, would not fit."""
        if not 0 <= digit <= 9:
            raise ValueError(f"not a digit: {digit}")
        if self.decimals is None:
            fen = self.fen * 10 + digit
            return Keyed(fen) if fen <= MAX_KEYED_FEN else None
        if self.decimals == 2:
            return None
        place = 10 if self.decimals == 0 else 1
        return Keyed(self.fen + digit * place, self.decimals + 1)

    def point(self) -> Keyed | None:
        """None when the point is keyed already, or the yuan keyed would not fit."""
        if self.decimals is not None or self.fen * 100 > MAX_KEYED_FEN:
            return None
        return Keyed(self.fen * 100, 0)

    def backspace(self) -> Keyed:
        """Remove the last key: a digit, or the point."""
        match self.decimals:
            case None:
                return Keyed(self.fen // 10)
            case 0:
                return Keyed(self.fen // 100)
            case 1:
                return Keyed(self.fen - self.fen % 100, 0)
            case _:
                return Keyed(self.fen - self.fen % 10, 1)


def in_words(fen: int) -> str:
    """The amount in Chinese capital numerals, as cheques and invoices write it:
    1200000 -> '壹万贰仟元整', 1640902 -> '壹万陆仟肆佰零玖元零贰分'.

    As the People's Bank's rules for bills write it: a run of zeros between figures is one 零;
    zeros that close a 万 or 亿 group are not written; 零 follows 元 when the 元 figure or the
    jiao is zero and fen follow; 整 follows 元 when there are no jiao or fen.
    """
    if not 0 <= fen < 10**18:
        raise ValueError(f"no words for {fen} fen")
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    words = _yuan_words(yuan)
    if words:
        words += "元"
    if ((jiao and yuan % 10 == 0) or (not jiao and fen_digit)) and words:
        words += "零"  # 壹仟陆佰捌拾元零叁角贰分, 叁佰贰拾伍元零肆分
    if jiao:
        words += _DIGITS[jiao] + "角"
    if fen_digit:
        words += _DIGITS[fen_digit] + "分"
    if not words:
        return "零元整"
    return words if cents else words + "整"


def _yuan_words(yuan: int) -> str:
    groups: list[int] = []
    while yuan:
        yuan, group = divmod(yuan, 10_000)
        groups.append(group)
    words, zero = "", False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            zero = bool(words)
            continue
        if words and group < 1000:
            zero = True  # the group starts with a zero: 壹万零伍佰
        for place in reversed(range(4)):
            figure = group // 10**place % 10
            if figure == 0:
                zero = zero or (bool(words) and place < 3 and group % 10**place != 0)
                continue
            if zero:
                words += "零"
                zero = False
            words += _DIGITS[figure] + _PLACES[place]
        words += _GROUPS[index]
    return words


def rate_fee(amount_fen: int, rate_ppm: int, cap_fen: int | None = None) -> int:
    """Fee at a rate in parts per million, rounded half up to the fen, then capped."""
    if amount_fen < 0 or rate_ppm < 0:
        raise ValueError("amount and rate must not be negative")
    fee = (amount_fen * rate_ppm + 500_000) // 1_000_000
    return fee if cap_fen is None else min(fee, cap_fen)
