"""Outage derivation: power-down/power-up pairs, a power-up alone, outage bits in the load profile,
and the merge with what is stored (idempotent, more trusted sources win)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.outages import merge_outages, outages_from_events, outages_from_interval_flags
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, Channel, IntervalReading, Unit

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def event(kind: EventType, at: datetime, meter: str = "m-1", **detail: object) -> MeterEvent:
    return MeterEvent(Subject.METER, meter, "rtu-1", kind, at, detail=dict(detail))


def interval(start: datetime, flags: int = 0, channel: Channel = Channel.ACTIVE_IMPORT) -> IntervalReading:
    return IntervalReading("m-1", channel, start, 15, Decimal("1.5"), Unit.KWH, meter_flags=flags)


def test_a_power_down_and_its_power_up_are_one_last_gasp_outage():
    outages = outages_from_events(
        "m-1", [event(EventType.POWER_UP, T0 + 45 * MIN), event(EventType.POWER_DOWN, T0)]
    )
    assert outages == [Outage("m-1", T0, T0 + 45 * MIN, OutageSource.LAST_GASP)]
    assert outages[0].duration == timedelta(minutes=45)


def test_a_power_down_alone_is_an_open_outage_and_other_meters_events_are_ignored():
    outages = outages_from_events(
        "m-1", [event(EventType.POWER_DOWN, T0), event(EventType.POWER_UP, T0 + MIN, meter="m-2")]
    )
    assert outages == [Outage("m-1", T0, None, OutageSource.LAST_GASP)]


def test_a_power_up_alone_starts_its_reported_duration_earlier_and_without_one_makes_none():
    with_duration = outages_from_events("m-1", [event(EventType.POWER_UP, T0, duration_s=1800)])
    without = outages_from_events("m-1", [event(EventType.POWER_UP, T0)])
    assert with_duration == [Outage("m-1", T0 - 30 * MIN, T0, OutageSource.POWER_UP)]
    assert without == []


def test_a_second_power_down_without_a_power_up_ends_the_first_outage():
    outages = outages_from_events(
        "m-1",
        [
            event(EventType.POWER_DOWN, T0),
            event(EventType.POWER_DOWN, T0 + 60 * MIN),
            event(EventType.POWER_UP, T0 + 70 * MIN),
        ],
    )
    assert outages == [
        Outage("m-1", T0, T0 + 60 * MIN, OutageSource.LAST_GASP),
        Outage("m-1", T0 + 60 * MIN, T0 + 70 * MIN, OutageSource.LAST_GASP),
    ]


def test_flagged_intervals_around_missing_ones_are_one_inferred_outage():
    # Given 14:00 normal, 14:15 flagged (power failed in it), 14:30-15:00 missing, 15:15 flagged
    # (power came back in it), 15:30 normal, on two channels
    readings = [
        interval(T0 + 15 * MIN * i, flags, channel)
        for i, flags in ((0, 0), (1, METER_FLAG_POWER_OUTAGE), (5, METER_FLAG_POWER_OUTAGE), (6, 0))
        for channel in (Channel.ACTIVE_IMPORT, Channel.REACTIVE_IMPORT)
    ]
    # Then one outage from the first flagged interval's start to the last one's end
    assert outages_from_interval_flags("m-1", readings) == [
        Outage("m-1", T0 + 15 * MIN, T0 + 90 * MIN, OutageSource.INFERRED_COMMS)
    ]


def test_a_present_interval_without_the_bit_separates_two_inferred_outages():
    readings = [interval(T0, METER_FLAG_POWER_OUTAGE), interval(T0 + 15 * MIN), interval(T0 + 30 * MIN, 1)]
    assert [o.start for o in outages_from_interval_flags("m-1", readings)] == [T0, T0 + 30 * MIN]


def test_a_later_power_up_closes_the_stored_open_outage():
    stored = [Outage("m-1", T0, None, OutageSource.LAST_GASP)]
    derived = outages_from_events(
        "m-1", [event(EventType.POWER_DOWN, T0), event(EventType.POWER_UP, T0 + 20 * MIN)]
    )
    changes = merge_outages(derived, stored)
    assert changes.save == [Outage("m-1", T0, T0 + 20 * MIN, OutageSource.LAST_GASP)]
    assert changes.discard == []


def test_an_event_outage_replaces_the_inferred_one_it_overlaps():
    inferred = Outage("m-1", T0, T0 + 30 * MIN, OutageSource.INFERRED_COMMS)
    exact = Outage("m-1", T0 + 4 * MIN, T0 + 22 * MIN, OutageSource.LAST_GASP)
    changes = merge_outages([exact], [inferred])
    assert (changes.save, changes.discard) == ([exact], [inferred])
    # and an inferred outage derived later does not come back over it
    again = merge_outages([inferred], [exact])
    assert (again.save, again.discard) == ([], [])


def test_overlapping_inferred_outages_are_joined():
    stored = [Outage("m-1", T0, T0 + 30 * MIN, OutageSource.INFERRED_COMMS)]
    derived = [Outage("m-1", T0 + 15 * MIN, T0 + 60 * MIN, OutageSource.INFERRED_COMMS)]
    changes = merge_outages(derived, stored)
    assert changes.save == [Outage("m-1", T0, T0 + 60 * MIN, OutageSource.INFERRED_COMMS)]
    assert changes.discard == []  # same identity (meter, start): updated in place


_sources = st.sampled_from(list(OutageSource))
_outages = st.builds(
    lambda meter, start, length, source, open_: Outage(
        meter, T0 + start * MIN, None if open_ else T0 + (start + length) * MIN, source
    ),
    st.sampled_from(["m-1", "m-2"]),
    st.integers(0, 600),
    st.integers(1, 180),
    _sources,
    st.booleans(),
)


@given(st.lists(_outages, max_size=8), st.lists(_outages, max_size=8))
def test_merging_is_idempotent_and_leaves_no_overlap_across_sources(derived, stored):
    # Given the store after one merge
    first = merge_outages(derived, stored)
    kept = {(o.meter_id, o.start): o for o in stored}
    for o in first.discard:
        kept.pop((o.meter_id, o.start))
    kept.update({(o.meter_id, o.start): o for o in first.save})
    # When the same outages are merged again (a redelivered batch)
    second = merge_outages(derived, list(kept.values()))
    # Then nothing changes
    assert (second.save, second.discard) == ([], [])
    # And no outage overlaps one of another source of the same meter
    result = list(kept.values())
    for a in result:
        for b in result:
            if a is not b and a.meter_id == b.meter_id and a.source is not b.source:
                assert not (a.covers(b.start, b.end or b.start + timedelta(days=3650)))
