"""Automatic re-reads: which ranges are gaps, what a run sends, when it gives up (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.commands import MAX_READ_RANGE
from hemera.domain.rereads import (
    Gap,
    RereadPolicy,
    find_gaps,
    plan_rereads,
    record_attempt,
    split_to_read_range,
)

T0 = datetime(2026, 11, 20, tzinfo=UTC)
Q = timedelta(minutes=15)


def starts(*ranges: tuple[int, int]) -> list[datetime]:
    """Interval starts for quarter-hour index ranges [a, b)."""
    return [T0 + i * Q for a, b in ranges for i in range(a, b)]


def test_a_run_of_missing_quarter_hours_between_delivered_ones_is_one_gap():
    # Given a meter that delivered 00:00-02:00 and 02:45-06:00 (02:00-02:45 missing)
    present = starts((0, 8), (11, 24))
    # When the gaps are found
    gaps = find_gaps("m-1", "rtu-1", present, 15, T0)
    # Then exactly the three missing quarter hours form one gap
    assert [(g.start, g.end) for g in gaps] == [(T0 + 8 * Q, T0 + 11 * Q)]


def test_data_not_yet_delivered_and_data_before_the_first_delivery_are_not_gaps():
    # Given a meter that delivered only 01:00-02:00 of a window starting at midnight
    gaps = find_gaps("m-1", "rtu-1", starts((4, 8)), 15, T0)
    # Then neither the hours before nor after it are re-read
    assert gaps == []
    # and a meter that delivered nothing has no gap (that is a communication failure)
    assert find_gaps("m-1", "rtu-1", [], 15, T0) == []


def test_deliveries_before_the_window_do_not_count():
    present = starts((0, 2), (10, 12))
    assert find_gaps("m-1", "rtu-1", present, 15, T0 + 5 * Q) == []


@given(st.sets(st.integers(min_value=0, max_value=400), min_size=1, max_size=200))
def test_gaps_and_deliveries_tile_the_span_between_first_and_last_delivery(indexes):
    present = [T0 + i * Q for i in indexes]
    gaps = find_gaps("m-1", "rtu-1", present, 15, T0)
    covered = set(present)
    for gap in gaps:
        n = int((gap.end - gap.start) / Q)
        missing = {gap.start + k * Q for k in range(n)}
        assert not missing & covered  # a gap never re-reads delivered data
        covered |= missing
    first, last = min(present), max(present)
    assert covered == {first + k * Q for k in range(int((last - first) / Q) + 1)}


def test_a_gap_longer_than_an_on_demand_read_is_cut_into_reads_of_at_most_31_days():
    gap = Gap("m-1", "rtu-1", T0, T0 + timedelta(days=40))
    pieces = split_to_read_range(gap)
    assert [p.end - p.start for p in pieces] == [MAX_READ_RANGE, timedelta(days=9)]
    assert pieces[0].end == pieces[1].start


def gap(meter: str, rtu: str, hour: int) -> Gap:
    return Gap(meter, rtu, T0 + timedelta(hours=hour), T0 + timedelta(hours=hour, minutes=45))


def test_a_run_sends_the_oldest_gaps_first_within_its_bounds_per_run_and_per_rtu():
    # Given 3 gaps on rtu-1's meters and 2 on rtu-2's, and bounds of 3 a run, 2 per RTU
    gaps = [gap("m-1", "rtu-1", h) for h in (5, 1, 3)] + [gap("m-9", "rtu-2", h) for h in (2, 4)]
    policy = RereadPolicy(max_commands_per_run=3, max_commands_per_rtu=2)
    # When a run is planned
    plan = plan_rereads(gaps, {}, T0 + timedelta(days=1), policy, frozenset({"m-1", "m-9"}))
    # Then it reads rtu-1's two oldest and rtu-2's oldest; the other two wait for the next run
    assert [(g.device_id, g.start.hour) for g in plan.send] == [("rtu-1", 1), ("rtu-2", 2), ("rtu-1", 3)]
    assert plan.deferred == 2


def test_a_gap_is_retried_after_the_retry_interval_then_given_up_after_its_attempts():
    policy = RereadPolicy(max_attempts=2, retry_after=timedelta(hours=2))
    g = gap("m-1", "rtu-1", 1)
    now = T0 + timedelta(days=1)
    first = record_attempt(None, g, now, "c-1")
    # Within the retry interval: nothing to do
    assert plan_rereads([g], {g.key: first}, now + timedelta(hours=1), policy, frozenset({"m-1"})).send == ()
    # After it: the second attempt
    later = now + timedelta(hours=2)
    assert plan_rereads([g], {g.key: first}, later, policy, frozenset({"m-1"})).send == (g,)
    second = record_attempt(first, g, later, "c-2")
    assert second.attempts == 2
    # Still open a retry interval after the last attempt: given up, once
    plan = plan_rereads([g], {g.key: second}, later + timedelta(hours=2), policy, frozenset({"m-1"}))
    assert plan.send == () and [a.exhausted for a in plan.give_up] == [True]
    given_up = plan.give_up[0]
    again = plan_rereads([g], {g.key: given_up}, later + timedelta(hours=9), policy, frozenset({"m-1"}))
    assert again.give_up == () and again.send == ()


def test_a_gap_that_data_closed_is_forgotten_but_only_for_meters_this_run_looked_at():
    g = gap("m-1", "rtu-1", 1)
    other = gap("m-2", "rtu-1", 1)
    now = T0 + timedelta(days=1)
    attempts = {
        g.key: record_attempt(None, g, now, "c-1"),
        other.key: record_attempt(None, other, now, "c-2"),
    }
    # When m-1's gap is gone and m-2 was not swept this run
    plan = plan_rereads([], attempts, now + timedelta(hours=3), RereadPolicy(), frozenset({"m-1"}))
    # Then only m-1's record is forgotten
    assert [a.meter_id for a in plan.forget] == ["m-1"]
