"""Alarm lifecycle: open → acknowledged → closed, auto-close when the condition clears, flapping
suppressed by the clearing hysteresis, no duplicate alarm for an open condition; Hypothesis
checks the invariants over any sequence of observations and acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hemera.domain.alarms import (
    Alarm,
    AlarmKey,
    AlarmState,
    AlarmType,
    Observation,
    acknowledge,
    apply_observation,
    close_if_quiet,
)
from hemera.domain.meter_events import Subject

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TENANT = "sul-energia"
PF = AlarmKey(Subject.METER, "sul-m-1001", AlarmType.LOW_POWER_FACTOR)  # clears after 2
OUTAGE = AlarmKey(Subject.METER, "sul-m-1001", AlarmType.OUTAGE)  # clears at the power up


def seen(key: AlarmKey, minutes: int, active: bool = True) -> Observation:
    return Observation(key, T0 + timedelta(minutes=minutes), active, {"minute": minutes})


def run(key: AlarmKey, *steps: tuple[int, bool]) -> tuple[list[Alarm], list[tuple[str | None, str]]]:
    """Apply observations; returns every alarm stored (in order) and the transitions."""
    current: Alarm | None = None
    stored, transitions = [], []
    for minute, active in steps:
        step = apply_observation(TENANT, current, seen(key, minute, active))
        if step.alarm is not None:
            current = step.alarm
            stored.append(step.alarm)
        if step.transition is not None:
            transitions.append((step.transition.previous_state, step.transition.state))
    return stored, transitions


def test_an_outage_opens_at_power_down_and_closes_at_power_up():
    stored, transitions = run(OUTAGE, (0, True), (45, False))

    assert transitions == [(None, "open"), ("open", "closed")]
    closed = stored[-1]
    assert closed.state is AlarmState.CLOSED
    assert (closed.first_seen, closed.closed_at) == (T0, T0 + timedelta(minutes=45))
    assert closed.facts["cleared"] == {"minute": 45}
    assert closed.facts["minute"] == 0  # what raised it stays


def test_an_open_condition_seen_again_counts_instead_of_raising_a_duplicate():
    stored, transitions = run(PF, (0, True), (15, True), (30, True))

    assert transitions == [(None, "open")]
    assert {a.alarm_id for a in stored} == {stored[0].alarm_id}
    assert (stored[-1].count, stored[-1].last_seen) == (3, T0 + timedelta(minutes=30))


def test_a_redelivered_observation_is_not_counted_twice():
    stored, _ = run(PF, (0, True), (15, True), (15, True), (5, True))
    assert stored[-1].count == 2


def test_the_same_clear_reading_judged_twice_counts_once():
    """A sweep run twice over the same newest reading (a manual run, a faster scheduler) must not
    close an alarm that only one healthy reading has seen."""
    stored, transitions = run(PF, (0, True), (15, False), (15, False), (10, False))

    assert transitions == [(None, "open")]
    assert (stored[-1].state, stored[-1].clear_count) == (AlarmState.OPEN, 1)
    _, transitions = run(PF, (0, True), (15, False), (15, False), (30, False))
    assert transitions == [(None, "open"), ("open", "closed")]


def test_auto_close_needs_two_clear_evaluations_so_flapping_raises_no_transitions():
    # Given a low power factor alarm, when the PF recovers for one evaluation and drops again,
    # then the alarm neither closes nor reopens; two clear evaluations in a row close it.
    stored, transitions = run(PF, (0, True), (15, False), (30, True), (45, False), (60, False))

    assert transitions == [(None, "open"), ("open", "closed")]
    assert stored[-1].count == 2
    assert stored[-1].closed_at == T0 + timedelta(minutes=60)


def test_after_a_close_the_condition_raises_a_new_alarm():
    stored, transitions = run(OUTAGE, (0, True), (10, False), (20, True))

    assert transitions == [(None, "open"), ("open", "closed"), (None, "open")]
    assert stored[0].alarm_id != stored[-1].alarm_id
    assert stored[-1].count == 1


def test_an_implied_start_raises_when_nothing_is_open_but_never_counts():
    implied = Observation(OUTAGE, T0 + timedelta(minutes=5), True, {"implied_by": "power_up"}, implied=True)
    raised = apply_observation(TENANT, None, implied)
    assert raised.alarm is not None and raised.alarm.count == 1

    stored, _ = run(OUTAGE, (0, True))
    assert apply_observation(TENANT, stored[-1], implied).alarm is None


def test_an_event_older_than_the_close_does_not_reopen():
    _, transitions = run(OUTAGE, (10, True), (20, False), (5, True))
    assert transitions == [(None, "open"), ("open", "closed")]


def test_acknowledge_then_auto_close():
    stored, _ = run(OUTAGE, (0, True))
    step = acknowledge(stored[-1], "user:ana", T0 + timedelta(minutes=5))
    acked = step.alarm
    assert acked is not None and step.transition is not None
    assert (acked.state, acked.acknowledged_by) == (AlarmState.ACKNOWLEDGED, "user:ana")
    assert (step.transition.previous_state, step.transition.state) == ("open", "acknowledged")

    # Acknowledging again changes nothing.
    assert acknowledge(acked, "user:bob", T0 + timedelta(minutes=6)).alarm is None

    closing = apply_observation(TENANT, acked, seen(OUTAGE, 30, active=False))
    assert closing.alarm is not None and closing.alarm.state is AlarmState.CLOSED
    assert closing.transition is not None and closing.transition.previous_state == "acknowledged"


def test_transition_ids_are_stable_for_the_same_change():
    stored, _ = run(OUTAGE, (0, True))
    again = apply_observation(TENANT, None, seen(OUTAGE, 0))
    assert again.transition is not None and again.alarm is not None
    assert again.alarm.alarm_id == stored[0].alarm_id
    assert again.transition.transition_id == f"{stored[0].alarm_id}-t1"


def test_one_shot_alarms_close_after_the_quiet_period():
    key = AlarmKey(Subject.RTU, "rtu-poa-01", AlarmType.RTU_BUFFER_OVERFLOW)
    stored, _ = run(key, (0, True))
    quiet = timedelta(hours=24)

    assert close_if_quiet(stored[-1], T0 + timedelta(hours=23), quiet).alarm is None
    closed = close_if_quiet(stored[-1], T0 + timedelta(hours=24), quiet).alarm
    assert closed is not None and closed.state is AlarmState.CLOSED
    # Alarms with a condition to re-evaluate never close by quiet.
    pf, _ = run(PF, (0, True))
    assert close_if_quiet(pf[-1], T0 + timedelta(days=30), quiet).alarm is None


# --- invariants ---------------------------------------------------------------------------------------
actions = st.lists(
    st.tuples(st.sampled_from(["seen", "clear", "ack"]), st.integers(min_value=1, max_value=30)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(actions=actions, key=st.sampled_from([PF, OUTAGE]))
def test_never_two_open_alarms_and_count_equals_sightings(actions, key):
    """Given any sequence of sightings, clearings and acks at increasing times, at most one alarm
    of the key is active at any moment, and each alarm's count is the number of sightings
    applied while it was active (its raise included)."""
    current: Alarm | None = None
    versions: dict[str, Alarm] = {}
    sightings: dict[str, int] = {}
    minute = 0
    for action, gap in actions:
        minute += gap
        at = T0 + timedelta(minutes=minute)
        if action == "ack":
            step = acknowledge(current, "user:ops", at) if current is not None else None
        else:
            step = apply_observation(TENANT, current, Observation(key, at, action == "seen"))
        if step is not None and step.alarm is not None:
            current = step.alarm
            versions[current.alarm_id] = current
        if action == "seen":
            # Every sighting (at a later time) belongs to the one active alarm: raised or counted.
            assert current is not None and current.is_active
            sightings[current.alarm_id] = sightings.get(current.alarm_id, 0) + 1
        active = [a for a in versions.values() if a.is_active]
        assert len(active) <= 1
        if current is not None and current.is_active:
            assert active == [current]
    for alarm_id, alarm in versions.items():
        assert alarm.count == sightings[alarm_id]
