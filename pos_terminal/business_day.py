"""The business day: the date a payment counts on, as WeChat's bill and the merchant see it.

WeChat's bill dates a payment by its `success_time`; a shop that closes after midnight (a bar
open until 02:00) counts its small hours on the day before, hence the cut-off hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo


@dataclass(frozen=True)
class BusinessDay:
    tz: tzinfo  # the merchant's time zone
    cutoff_hour: int = 0  # instants before this hour count on the previous date

    def date_of(self, instant: datetime) -> str:
        """The business date (ISO) of an aware instant."""
        local = instant.astimezone(self.tz)
        return (local - timedelta(hours=self.cutoff_hour)).date().isoformat()

    def paid_on(self, success_time: str | None, fallback: datetime) -> str:
        """The business date of a payment: its WeChat `success_time`, or `fallback` without one.

        An unreadable or zone-less `success_time` falls back too: a date must never be guessed
        in the host's zone.
        """
        if success_time:
            try:
                paid = datetime.fromisoformat(success_time)
            except ValueError:
                paid = None
            if paid is not None and paid.tzinfo is not None:
                return self.date_of(paid)
        return self.date_of(fallback)
