"""Billing cycles: the local days a period `YYYY-MM` covers for a tariff's reading day.

Convention of this platform (README "Billing determinants"): the cycle of `YYYY-MM` is the one
whose last day lies in that month, i.e. the one the meter reading on the tariff's reading day `d`
closes (Brazilian bills are referenced by the month of that reading). For `d` > 1 it runs from
day `d` of the month before to day `d - 1` of `YYYY-MM` (reading day 15: `2026-11` is
2026-10-15 ... 2026-11-14, read at 00:00 of 2026-11-15); reading day 1 gives the calendar month
(`2026-11` is 2026-11-01 ... 2026-11-30). Reading days are 1-28 so that every month has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """The local days `first` … `last` (inclusive) of one billing period `period` (`YYYY-MM`)."""

    period: str
    first: date
    last: date
    timezone: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        """The cycle's first instant (local midnight of `first`), in UTC."""
        return datetime.combine(self.first, time(0), tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The instant after the cycle (local midnight after `last`), in UTC."""
        after = self.last + timedelta(days=1)
        return datetime.combine(after, time(0), tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)


def parse_period(value: str) -> tuple[int, int]:
    """`YYYY-MM` as (year, month); ValueError otherwise."""
    match = _PERIOD.match(value)
    if match is None:
        raise ValueError(f"period {value!r} is not YYYY-MM")
    return int(match.group(1)), int(match.group(2))


def billing_cycle(period: str, reading_day: int, timezone: str) -> BillingCycle:
    """The billing cycle of `period` (`YYYY-MM`) for a tariff read on `reading_day` (1-28)."""
    if not 1 <= reading_day <= 28:
        raise ValueError("reading day must be 1-28")
    year, month = parse_period(period)
    if reading_day == 1:
        first = date(year, month, 1)
        next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
        last = date(next_year, next_month, 1) - timedelta(days=1)
    else:
        previous_year, previous_month = (year - 1, 12) if month == 1 else (year, month - 1)
        first = date(previous_year, previous_month, reading_day)
        last = date(year, month, reading_day - 1)
    return BillingCycle(period, first, last, timezone)
