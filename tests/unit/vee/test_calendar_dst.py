"""The local day as intervals: 23/24/25-hour days on DST changes, in the tenant's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from hemera.domain.final_series import FinalStatus
from hemera.domain.vee import catalog as c
from hemera.domain.vee.calendar import day_grid, day_type, is_like_day
from tests.unit.vee.builders import failure, flat, grid, history_day, inputs, readings, run


@pytest.mark.parametrize(
    ("zone", "day", "expected", "first_utc"),
    [
        ("America/New_York", date(2026, 3, 8), 92, datetime(2026, 3, 8, 5, tzinfo=UTC)),  # spring forward
        ("America/New_York", date(2026, 11, 1), 100, datetime(2026, 11, 1, 4, tzinfo=UTC)),  # fall back
        ("America/New_York", date(2026, 3, 9), 96, datetime(2026, 3, 9, 4, tzinfo=UTC)),
        ("Australia/Sydney", date(2026, 10, 4), 92, datetime(2026, 10, 3, 14, tzinfo=UTC)),
        ("Australia/Sydney", date(2026, 4, 5), 100, datetime(2026, 4, 4, 13, tzinfo=UTC)),
        # Brazil has had no DST since 2019: every 2026 day is 24 hours.
        ("America/Sao_Paulo", date(2026, 11, 1), 96, datetime(2026, 11, 1, 3, tzinfo=UTC)),
        # ...but its old DST began AT midnight: 2018-11-04 had no 00:00, the day starts at 01:00.
        ("America/Sao_Paulo", date(2018, 11, 4), 92, datetime(2018, 11, 4, 3, tzinfo=UTC)),
        ("America/Sao_Paulo", date(2019, 2, 16), 100, datetime(2019, 2, 16, 2, tzinfo=UTC)),
    ],
)
def test_a_local_day_has_the_intervals_of_its_hours(zone, day, expected, first_utc):
    # When the grid of a tenant-local day is built
    starts = day_grid(day, zone, 15)
    # Then it holds one 15-minute interval per quarter hour of the local day, from local midnight
    assert len(starts) == expected
    assert starts[0] == first_utc
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(starts))


@pytest.mark.parametrize(("minutes", "expected"), [(5, 300), (30, 50), (60, 25)])
def test_other_interval_lengths_on_a_25_hour_day(minutes, expected):
    assert len(day_grid(date(2026, 11, 1), "America/New_York", minutes)) == expected


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("America/New_York", date(2026, 3, 8), 92),
        ("America/New_York", date(2026, 11, 1), 100),
        ("Australia/Sydney", date(2026, 10, 4), 92),
    ],
)
def test_a_complete_dst_day_passes_the_count_and_every_interval_is_actual(zone, day, expected):
    # Given a meter that sent every interval of a DST change day
    sent = readings(flat(5, day=day, zone=zone), day=day, zone=zone)
    # When VEE runs
    outcome = run(inputs(sent, day=day, zone=zone))
    # Then the final day has every interval once, all actual, and no count failure
    assert len(outcome.day.intervals) == expected
    assert {i.status for i in outcome.day.intervals} == {FinalStatus.ACTUAL}
    assert failure(outcome, c.INTERVAL_COUNT) is None
    assert outcome.missing == ()


def test_a_96_interval_day_sent_on_a_92_interval_day_fails_the_count():
    # Given a 23-hour day for which the meter sent only 90 intervals
    day, zone = date(2026, 3, 8), "America/New_York"
    values = flat(5, day=day, zone=zone)
    values[0] = values[1] = None
    outcome = run(inputs(readings(values, day=day, zone=zone), day=day, zone=zone))
    # Then the count rule names the expected 92 of a 23-hour day
    count = failure(outcome, c.INTERVAL_COUNT)
    assert count is not None and count.message.startswith("received 90 of 92 intervals of a 23-hour day")
    assert outcome.missing == ((grid(day, zone)[0], grid(day, zone)[2]),)


def test_like_day_mapping_and_holidays_as_sundays():
    tuesday, wednesday, thursday, monday = (
        date(2026, 3, 17),
        date(2026, 3, 18),
        date(2026, 3, 19),
        date(2026, 3, 16),
    )
    assert is_like_day(tuesday, thursday, frozenset()) and is_like_day(thursday, wednesday, frozenset())
    assert not is_like_day(monday, tuesday, frozenset())
    assert not is_like_day(date(2026, 3, 20), thursday, frozenset())  # Friday only from Friday
    holiday = wednesday
    assert day_type(holiday, frozenset({holiday})) == 6
    assert is_like_day(holiday, date(2026, 3, 15), frozenset({holiday}))  # a Sunday stands in
    assert not is_like_day(holiday, tuesday, frozenset({holiday}))


def test_like_day_matches_local_wall_clock_time_across_dst_changes():
    # Given New York, Sunday 2026-03-15 missing 02:00-04:00 local (8 intervals). The nearest like
    # day, Sunday 03-08, is the 23-hour day without 02:00-02:59; Sunday 03-01 has every hour.
    zone, day = "America/New_York", date(2026, 3, 15)
    short_day = history_day(date(2026, 3, 8), 5, zone=zone)
    full_day = history_day(date(2026, 3, 1), 3, zone=zone)
    values = flat(10, day=day, zone=zone)
    values[8:16] = [None] * 8
    outcome = run(
        inputs(readings(values, day=day, zone=zone), day=day, zone=zone, history=[short_day, full_day])
    )
    # Then 02:xx comes from 03-01 (the short day has no 02:xx) and 03:xx from the nearer 03-08
    assert [i.value for i in outcome.day.intervals[8:16]] == [Decimal(3)] * 4 + [Decimal(5)] * 4


def test_the_repeated_hour_of_a_25_hour_day_is_estimated_from_the_same_wall_clock_hour():
    # Given New York's 25-hour Sunday 2026-11-01 missing both 01:00-01:59 hours (fold 0 and 1)
    zone, day = "America/New_York", date(2026, 11, 1)
    like = history_day(date(2026, 10, 25), [*[1] * 4, *[7] * 4, *[2] * 88], zone=zone)
    values = flat(10, day=day, zone=zone)
    values[4:12] = [None] * 8  # local 01:00 EDT .. 01:45 EST
    outcome = run(inputs(readings(values, day=day, zone=zone), day=day, zone=zone, history=[like]))
    # Then both 01:xx hours take the like day's 01:xx values (7 kWh), 100 intervals in all
    assert [i.value for i in outcome.day.intervals[4:12]] == [Decimal(7)] * 8
    assert len(outcome.day.intervals) == 100
