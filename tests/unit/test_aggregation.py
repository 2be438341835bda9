"""Energy per period, maximum demand and power factor in the tenant's calendar, against values
computed by hand: DST change days of Sydney (23 and 25 hours) and a month boundary that falls on
a UTC day other than the local one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from hemera.domain.aggregation import (
    Granularity,
    calendar_periods,
    energy_by_period,
    interval_demand_kw,
    interval_minutes,
    peak_demand_by_period,
    power_factor,
    power_factor_by_period,
)
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading

SYDNEY = ZoneInfo("Australia/Sydney")
# 2026 in Sydney: AEDT (+11) ends 2026-04-05 03:00 → 02:00 AEST (+10); starts 2026-10-04 02:00 → 03:00.
FALL_BACK_DAY, SPRING_FORWARD_DAY = datetime(2026, 4, 5, tzinfo=SYDNEY), datetime(2026, 10, 4, tzinfo=SYDNEY)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def reading(
    start: datetime, kwh: str, channel: Channel = Channel.ACTIVE_IMPORT, minutes: int = 15
) -> IntervalReading:
    return IntervalReading(
        meter_id="cp-m-2001",
        channel=channel,
        start=start.astimezone(UTC),
        length_minutes=minutes,
        value=Decimal(kwh),
        unit=CHANNEL_UNITS[channel],
    )


def every_interval(start: datetime, end: datetime, kwh: str, channel: Channel = Channel.ACTIVE_IMPORT):
    cursor, stop = start.astimezone(UTC), end.astimezone(UTC)
    while cursor < stop:
        yield reading(cursor, kwh, channel)
        cursor += timedelta(minutes=15)


def next_day(day: datetime) -> datetime:
    return datetime.combine(day.date() + timedelta(days=1), day.time(), tzinfo=SYDNEY)


def test_a_spring_forward_day_has_23_hours_and_92_quarter_hours():
    periods = calendar_periods(SPRING_FORWARD_DAY, next_day(SPRING_FORWARD_DAY), Granularity.HOUR, SYDNEY, 15)
    assert len(periods) == 23
    assert {p.expected_intervals for p in periods} == {4}
    # The hour from 01:00 AEST ends at 03:00 AEDT: 02:00 never happens on the wall clock.
    assert periods[1].start == local("2026-10-04T01:00:00+10:00")
    assert periods[1].end == local("2026-10-04T03:00:00+11:00")
    (day,) = calendar_periods(SPRING_FORWARD_DAY, next_day(SPRING_FORWARD_DAY), Granularity.DAY, SYDNEY, 15)
    assert day.expected_intervals == 92


def test_a_fall_back_day_has_25_hours_with_the_repeated_hour_told_apart_by_its_offset():
    periods = calendar_periods(FALL_BACK_DAY, next_day(FALL_BACK_DAY), Granularity.HOUR, SYDNEY, 15)
    assert len(periods) == 25
    starts = [p.start.astimezone(SYDNEY).isoformat() for p in periods]
    assert starts[2:4] == ["2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00"]
    (day,) = calendar_periods(FALL_BACK_DAY, next_day(FALL_BACK_DAY), Granularity.DAY, SYDNEY, 15)
    assert day.expected_intervals == 100


def test_energy_of_a_fall_back_day_counts_missing_intervals_and_never_fills_them():
    # Given 0.5 kWh in every quarter-hour of the 25-hour day except two in the second 02:00 hour
    start, end = FALL_BACK_DAY, next_day(FALL_BACK_DAY)
    gap = {local("2026-04-05T02:15:00+10:00"), local("2026-04-05T02:30:00+10:00")}
    readings = [r for r in every_interval(start, end, "0.5") if r.start not in gap]
    # When summed per day and per hour
    (day,) = energy_by_period(readings, calendar_periods(start, end, Granularity.DAY, SYDNEY, 15))
    hours = energy_by_period(readings, calendar_periods(start, end, Granularity.HOUR, SYDNEY, 15))
    # Then the day holds 98 x 0.5 kWh, 2 intervals missing; the repeated hours are kept apart
    assert (day.energy, day.intervals, day.missing) == (Decimal("49.0"), 98, 2)
    assert [(h.energy, h.intervals, h.missing) for h in hours[2:4]] == [
        (Decimal("2.0"), 4, 0),
        (Decimal("1.0"), 2, 2),
    ]


def test_a_period_without_data_is_none_not_zero_and_an_actual_zero_stays_zero():
    start = local("2026-11-20T00:00:00+11:00")
    periods = calendar_periods(start, start + timedelta(hours=2), Granularity.HOUR, SYDNEY, 15)
    readings = list(every_interval(start, start + timedelta(hours=1), "0"))
    first, second = energy_by_period(readings, periods)
    assert (first.energy, first.intervals, first.missing) == (Decimal(0), 4, 0)
    assert (second.energy, second.intervals, second.missing) == (None, 0, 4)


def test_the_month_boundary_is_local_midnight_not_the_utc_day():
    # 2026-11-01 00:00 in Sydney is 2026-10-31 13:00 UTC: still October's UTC day.
    start, end = local("2026-10-31T00:00:00+11:00"), local("2026-11-02T00:00:00+11:00")
    readings = [
        reading(local("2026-10-31T23:45:00+11:00"), "1.25"),
        reading(local("2026-11-01T00:00:00+11:00"), "2.5"),
        reading(local("2026-11-01T23:45:00+11:00"), "0.75"),
    ]
    october, november = energy_by_period(
        readings, calendar_periods(start, end, Granularity.MONTH, SYDNEY, 15)
    )
    assert (october.period.end, october.energy, october.intervals) == (
        local("2026-11-01T00:00:00+11:00"),
        Decimal("1.25"),
        1,
    )
    assert (november.energy, november.intervals, november.missing) == (Decimal("3.25"), 2, 94)
    # Whole months: October loses the hour DST skipped, November has 30 x 96 quarter-hours.
    months = calendar_periods(
        local("2026-10-01T00:00:00+10:00"), local("2026-12-01T00:00:00+11:00"), Granularity.MONTH, SYDNEY, 15
    )
    assert [m.expected_intervals for m in months] == [31 * 96 - 4, 30 * 96]


def test_the_first_and_last_periods_are_cut_to_the_range():
    start, end = local("2026-11-20T06:00:00+11:00"), local("2026-11-22T12:00:00+11:00")
    periods = calendar_periods(start, end, Granularity.DAY, SYDNEY, 30)
    assert [(p.start, p.expected_intervals) for p in periods] == [
        (start, 36),
        (local("2026-11-21T00:00:00+11:00"), 48),
        (local("2026-11-22T00:00:00+11:00"), 24),
    ]
    assert periods[-1].end == end


def test_interval_granularity_gives_one_period_per_interval_on_the_utc_grid():
    start = local("2026-11-20T00:00:00+11:00")
    periods = calendar_periods(start, start + timedelta(hours=1), Granularity.INTERVAL, SYDNEY, 15)
    assert [p.start.astimezone(SYDNEY).strftime("%H:%M") for p in periods] == [
        "00:00",
        "00:15",
        "00:30",
        "00:45",
    ]
    assert {p.expected_intervals for p in periods} == {1}


def test_demand_is_energy_times_60_over_the_interval_length():
    assert interval_demand_kw(reading(local("2026-11-20T00:00:00+11:00"), "25")) == Decimal(100)
    thirty = reading(local("2026-11-20T00:00:00+11:00"), "50", minutes=30)
    assert interval_demand_kw(thirty) == Decimal(100)
    with pytest.raises(ValueError, match="kWh"):
        interval_demand_kw(reading(local("2026-11-20T00:00:00+11:00"), "5", Channel.REACTIVE_IMPORT))


def test_peak_demand_per_day_with_the_interval_where_it_occurred_earliest_on_a_tie():
    start = SPRING_FORWARD_DAY
    readings = [
        reading(local("2026-10-04T01:45:00+10:00"), "30"),  # 120 kW, just before the skipped hour
        reading(local("2026-10-04T18:00:00+11:00"), "30"),  # the same, later: the earlier wins
        reading(local("2026-10-04T19:00:00+11:00"), "12"),
        reading(local("2026-10-05T09:15:00+11:00"), "40.5"),  # 162 kW on the next day
    ]
    periods = calendar_periods(start, start + timedelta(days=2), Granularity.DAY, SYDNEY, 15)
    first, second = peak_demand_by_period(readings, periods)
    assert (first.demand_kw, first.at, first.intervals, first.missing) == (
        Decimal(120),
        local("2026-10-04T01:45:00+10:00"),
        3,
        89,
    )
    assert (second.demand_kw, second.at) == (Decimal(162), local("2026-10-05T09:15:00+11:00"))
    (empty,) = peak_demand_by_period([], periods[:1])
    assert (empty.demand_kw, empty.at, empty.missing) == (None, None, 92)


def test_power_factor_is_p_over_the_apparent_energy():
    assert power_factor(Decimal(3), Decimal(4)) == Decimal("0.6")
    assert power_factor(Decimal(5), Decimal(0)) == Decimal(1)
    assert power_factor(Decimal(0), Decimal(0)) is None


def test_power_factor_adds_both_reactive_channels_and_skips_incomplete_intervals():
    # Given an hour of 3 kWh, 2 kvarh R+ and 2 kvarh R- per quarter-hour, with R- missing once
    start = local("2026-11-20T14:00:00+11:00")
    end = start + timedelta(hours=1)
    active = list(every_interval(start, end, "3"))
    r_plus = list(every_interval(start, end, "2", Channel.REACTIVE_IMPORT))
    r_minus = [
        r for r in every_interval(start, end, "2", Channel.REACTIVE_EXPORT) if r.start != active[3].start
    ]
    # When the hourly power factor is computed
    (hour,) = power_factor_by_period(
        active, [r_plus, r_minus], calendar_periods(start, end, Granularity.HOUR, SYDNEY, 15)
    )
    # Then P = 3 x 3 = 9 kWh and Q = 3 x (2 + 2) = 12 kvarh over the 3 complete intervals: PF 0.6
    assert (hour.active_kwh, hour.reactive_kvarh, hour.power_factor) == (
        Decimal(9),
        Decimal(12),
        Decimal("0.6"),
    )
    assert (hour.intervals, hour.missing) == (3, 1)


def test_the_interval_length_comes_from_the_data_or_defaults_to_15_minutes():
    thirty = reading(local("2026-11-20T00:00:00+11:00"), "1", minutes=30)
    assert interval_minutes([[], [thirty]]) == 30
    assert interval_minutes([[], []]) == 15
