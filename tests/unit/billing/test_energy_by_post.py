"""Consumption split by time-of-use post (`hemera.domain.aggregation.energy_by_post`) over a
Brazilian Group A calendar, across a national holiday."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.domain.aggregation import Granularity, calendar_periods, energy_by_post
from hemera.domain.billing.tou import brazil_group_a, post_of
from hemera.domain.readings import Channel, IntervalReading, Unit
from tests.unit.billing.builders import SAO_PAULO

CALENDAR = brazil_group_a()
START = datetime(2026, 11, 19, tzinfo=SAO_PAULO)  # Thursday; Friday 20 is a national holiday
END = START + timedelta(days=2)


def _readings(skip: datetime | None = None) -> list[IntervalReading]:
    """1 kWh a quarter-hour, 2 kWh in 18:00-21:00, on Thu 19 and Fri 20 (local)."""
    readings, cursor = [], START.astimezone(UTC)
    while cursor < END:
        local = cursor.astimezone(SAO_PAULO)
        if cursor != skip:
            value = Decimal(2) if 18 <= local.hour < 21 else Decimal(1)
            readings.append(IntervalReading("sul-m-1002", Channel.ACTIVE_IMPORT, cursor, 15, value, Unit.KWH))
        cursor += timedelta(minutes=15)
    return readings


def _split(readings):
    return energy_by_post(readings, START, END, 15, CALENDAR.posts, lambda s: post_of(s, CALENDAR))


def test_the_holiday_evening_counts_as_fora_ponta():
    """Ponta: Thu 12 x 2 = 24 kWh of 12 expected. Fora ponta: Thu 84 x 1 + Fri (84 x 1 + 12 x 2) =
    192 kWh of 180 expected intervals."""
    ponta, fora = _split(_readings())

    assert (ponta.energy, ponta.period.expected_intervals, ponta.intervals) == (Decimal(24), 12, 12)
    assert (fora.energy, fora.period.expected_intervals, fora.intervals) == (Decimal(192), 180, 180)


def test_a_missing_ponta_interval_is_counted_not_filled():
    ponta, _ = _split(_readings(skip=datetime(2026, 11, 19, 19, tzinfo=SAO_PAULO).astimezone(UTC)))

    assert (ponta.energy, ponta.intervals, ponta.missing) == (Decimal(22), 11, 1)


def test_no_reading_gives_no_energy_rather_than_zero():
    ponta, fora = _split([])

    assert (ponta.energy, fora.energy) == (None, None)
    assert (ponta.missing, fora.missing) == (12, 180)


def test_posts_are_not_calendar_periods():
    with pytest.raises(ValueError, match="posts"):
        calendar_periods(START, END, Granularity.POST, SAO_PAULO, 15)
