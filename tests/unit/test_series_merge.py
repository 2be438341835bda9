"""Meter-channel-day merging: idempotent, later deliveries of a slot win, counts are honest."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.series import group_by_series, merge_slots, reading_of, slot_of


def _reading(minute: int, value: str, day: int = 20) -> IntervalReading:
    start = datetime(2026, 11, day, tzinfo=UTC) + timedelta(minutes=minute)
    return IntervalReading(
        "m-1",
        Channel.ACTIVE_IMPORT,
        start,
        15,
        Decimal(value),
        Unit.KWH,
        raw_value=int(Decimal(value) * 1000),
    )


def test_merging_the_same_readings_twice_changes_nothing():
    readings = [_reading(15 * i, "1.250") for i in range(96)]
    first = merge_slots({}, readings)
    second = merge_slots(first.slots, readings)
    assert (first.new, first.modified) == (96, True)
    assert (second.new, second.changed, second.unchanged, second.modified) == (0, 0, 96, False)


def test_a_corrected_value_replaces_the_slot_and_counts_as_changed():
    first = merge_slots({}, [_reading(0, "1.000")])
    second = merge_slots(first.slots, [_reading(0, "1.100")])
    assert second.changed == 1
    assert second.slots["0000"]["v"] == "1.100"


def test_a_slot_round_trips_exactly():
    reading = _reading(45, "12.345")
    back = reading_of("m-1", Channel.ACTIVE_IMPORT, reading.day, reading.slot, slot_of(reading), 15, Unit.KWH)
    assert back == reading


def test_readings_group_by_utc_day():
    groups = group_by_series([_reading(1425, "1"), _reading(1440, "1")])
    assert sorted(d.isoformat() for (_, _, d) in groups) == ["2026-11-20", "2026-11-21"]


@pytest.mark.parametrize("bad", [datetime(2026, 11, 20, 0, 7, tzinfo=UTC), datetime(2026, 11, 20)])
def test_unaligned_or_naive_starts_are_refused(bad):
    with pytest.raises(ValueError):
        IntervalReading("m-1", Channel.ACTIVE_IMPORT, bad, 15, Decimal(1), Unit.KWH)
