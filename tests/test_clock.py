"""The system clock keeps the merchant's zone, and never guesses one."""

from __future__ import annotations

import pytest

from pos_terminal.clock import SystemClock


def test_the_clock_tells_time_in_the_merchant_zone() -> None:
    assert str(SystemClock("Asia/Tokyo").now().tzinfo) == "Asia/Tokyo"


def test_an_unknown_zone_is_refused_not_taken_as_beijing_time() -> None:
    with pytest.raises(ValueError, match="'Asia/Shanghai'"):
        SystemClock("Asia/Shanghia")
