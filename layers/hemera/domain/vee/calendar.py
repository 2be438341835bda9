"""The tenant-local day as intervals, and like days (AEMO / WA Metering Code mapping).

A local day runs from local midnight to the next local midnight, so it is 23, 24 or 25 hours on a
DST change (92, 96 or 100 intervals of 15 minutes). Its intervals are the UTC-aligned intervals
whose start lies in that span, in UTC order. Intervals of two days are matched by their local
wall-clock start (hour, minute and DST fold), which keeps 08:00 matched to 08:00 across a change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Like days (WA Metering Code / AEMO): weekday (Mon=0) -> the weekdays that may stand in for it.
LIKE_DAYS: dict[int, tuple[int, ...]] = {
    0: (0,),
    1: (1, 2, 3),
    2: (2, 1, 3),
    3: (3, 2, 1),
    4: (4,),
    5: (5,),
    6: (6,),
}
SUNDAY = 6

LocalSlot = tuple[int, int, int]  # local (hour, minute, fold)


def day_bounds(local_day: date, timezone: str) -> tuple[datetime, datetime]:
    """UTC `[start, end)` of a tenant-local day (a midnight inside a DST gap starts at the
    first existing instant after it, as zoneinfo resolves it)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(local_day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def day_grid(local_day: date, timezone: str, interval_minutes: int) -> tuple[datetime, ...]:
    """UTC starts of every interval of the local day, in time order."""
    start, end = day_bounds(local_day, timezone)
    step = timedelta(minutes=interval_minutes)
    minute_of_day = start.hour * 60 + start.minute
    # Interval starts are aligned in UTC (IntervalReading); a zone whose midnight is not aligned
    # (e.g. +09:30 with 60-minute data) starts the day at the next aligned instant.
    first = start + timedelta(minutes=-minute_of_day % interval_minutes) - timedelta(seconds=start.second)
    starts = []
    current = first
    while current < end:
        starts.append(current)
        current += step
    return tuple(starts)


def local_slot(start: datetime, timezone: str) -> LocalSlot:
    """The local wall-clock start of an interval (hour, minute, fold)."""
    local = start.astimezone(ZoneInfo(timezone))
    return local.hour, local.minute, local.fold


def day_type(day: date, holidays: frozenset[date]) -> int:
    """The weekday a day counts as (Mon=0 … Sun=6); a public holiday counts as a Sunday."""
    return SUNDAY if day in holidays else day.weekday()


def is_like_day(target: date, candidate: date, holidays: frozenset[date]) -> bool:
    """True when `candidate` may stand in for `target` under the like-day mapping."""
    return day_type(candidate, holidays) in LIKE_DAYS[day_type(target, holidays)]
