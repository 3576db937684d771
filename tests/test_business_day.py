"""The business day a payment counts on: WeChat's success time, the merchant's zone, the cut-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from pos_terminal.business_day import BusinessDay

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_bar_closing_at_two_counts_half_past_one_on_the_day_before() -> None:
    bar = BusinessDay(SHANGHAI, cutoff_hour=2)
    assert bar.paid_on("2026-11-26T01:30:00+08:00", datetime.now(UTC)) == "2026-11-25"
    assert bar.paid_on("2026-11-26T02:00:00+08:00", datetime.now(UTC)) == "2026-11-26"


def test_the_date_is_the_merchants_not_the_hosts_or_utcs() -> None:
    shop = BusinessDay(SHANGHAI)
    # 18:30 UTC on the 25th is 02:30 on the 26th in Shanghai
    assert shop.paid_on("2026-11-25T18:30:00+00:00", datetime.now(UTC)) == "2026-11-26"


def test_without_a_readable_zoned_success_time_the_fallback_instant_is_dated() -> None:
    shop = BusinessDay(SHANGHAI)
    fallback = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 04:00 on the 26th in Shanghai
    for bad in (None, "", "yesterday", "2026-11-26T01:30:00"):  # the last has no zone
        assert shop.paid_on(bad, fallback) == "2026-11-26"


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=23),
)
def test_the_business_date_is_the_local_date_moved_back_by_the_cutoff(
    instant: datetime, cutoff: int
) -> None:
    local = instant.astimezone(SHANGHAI)
    expected = local.date() if local.hour >= cutoff else local.date() - timedelta(days=1)
    assert BusinessDay(SHANGHAI, cutoff).date_of(instant) == expected.isoformat()
