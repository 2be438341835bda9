"""The in-memory alarm store and the DynamoDB one (moto) pass the same cases: conditional writes
per key (no duplicate open alarm under concurrency), listings with filters and cursors, the
sweep's active alarms, settings and the VEE tally — all tenant-first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.alarms_memory import MemoryAlarmStore
from hemera.domain.alarms import (
    Alarm,
    AlarmConflict,
    AlarmKey,
    AlarmSettings,
    AlarmState,
    AlarmThresholds,
    AlarmType,
    Observation,
    acknowledge,
    apply_observation,
)
from hemera.domain.meter_events import Subject
from hemera.domain.tenancy import TenantContext
from hemera.ports.alarms import AlarmQuery
from hemera.wiring import alarm_ports

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACME, ACME_CORP = TenantContext("acme"), TenantContext("acme-corp")


@pytest.fixture(params=["memory", "aws"])
def store(request):
    if request.param == "memory":
        return MemoryAlarmStore()
    moto_cloud = request.getfixturevalue("moto_cloud")
    return alarm_ports(moto_cloud).alarms


def raised(ctx: TenantContext, meter: str, alarm_type: AlarmType, minutes: int = 0) -> Alarm:
    key = AlarmKey(Subject.METER, meter, alarm_type)
    step = apply_observation(
        ctx.tenant_id, None, Observation(key, T0 + timedelta(minutes=minutes), True, {"x": 1})
    )
    assert step.alarm is not None
    return step.alarm


def test_the_first_write_of_a_key_wins_and_the_second_conflicts(store):
    # Given two evaluations that both read "no alarm" for the same condition
    first = raised(ACME, "m-1", AlarmType.COVER_OPEN)
    second = raised(ACME, "m-1", AlarmType.COVER_OPEN, minutes=1)
    store.save(ACME, first, 0)

    # When the second writes with the version it read, then it conflicts
    with pytest.raises(AlarmConflict):
        store.save(ACME, second, 0)

    current, version = store.current(ACME, first.key)
    assert (current, version) == (first, 1)
    assert store.listing(ACME, AlarmQuery(), None, 10).items == [first]


def test_updates_go_through_the_key_version(store):
    alarm = raised(ACME, "m-1", AlarmType.OUTAGE)
    store.save(ACME, alarm, 0)
    acked = acknowledge(alarm, "user:ana", T0 + timedelta(minutes=5)).alarm
    assert acked is not None
    store.save(ACME, acked, 1)
    with pytest.raises(AlarmConflict):
        store.save(ACME, replace(acked, count=9), 1)

    assert store.get(ACME, alarm.alarm_id) == acked
    assert store.current(ACME, alarm.key) == (acked, 2)


def test_alarms_round_trip_with_their_facts_and_times(store):
    alarm = replace(
        raised(ACME, "m-1", AlarmType.DEMAND_OVERRUN),
        facts={"interval_start": "2026-11-20T14:15:00+00:00", "demand_kw": "960.000", "n": 2},
    )
    store.save(ACME, alarm, 0)
    assert store.get(ACME, alarm.alarm_id) == alarm


def test_tenants_never_see_each_other(store):
    alarm = raised(ACME, "m-1", AlarmType.COVER_OPEN)
    store.save(ACME, alarm, 0)

    assert store.get(ACME_CORP, alarm.alarm_id) is None
    assert store.current(ACME_CORP, alarm.key) == (None, 0)
    assert store.listing(ACME_CORP, AlarmQuery(), None, 10).items == []
    assert store.active(ACME_CORP) == []


def test_listing_is_newest_first_with_filters_and_cursor_pages(store):
    alarms = [
        raised(ACME, "m-1", AlarmType.COVER_OPEN, minutes=0),
        raised(ACME, "m-2", AlarmType.COVER_OPEN, minutes=10),
        raised(ACME, "m-1", AlarmType.OUTAGE, minutes=20),
        raised(ACME, "m-3", AlarmType.LOW_POWER_FACTOR, minutes=30),
    ]
    for alarm in alarms:
        store.save(ACME, alarm, 0)
    closed = replace(alarms[2], state=AlarmState.CLOSED, closed_at=T0 + timedelta(minutes=25))
    store.save(ACME, closed, 1)

    first = store.listing(ACME, AlarmQuery(), None, 3)
    assert [a.alarm_id for a in first.items] == [alarms[3].alarm_id, alarms[2].alarm_id, alarms[1].alarm_id]
    assert first.next_cursor == alarms[1].alarm_id
    second = store.listing(ACME, AlarmQuery(), first.next_cursor, 3)
    assert [a.alarm_id for a in second.items] == [alarms[0].alarm_id]
    assert second.next_cursor is None

    by_meter = store.listing(ACME, AlarmQuery(meter_id="m-1"), None, 10).items
    assert [a.alarm_id for a in by_meter] == [alarms[2].alarm_id, alarms[0].alarm_id]
    by_state = store.listing(ACME, AlarmQuery(state=AlarmState.CLOSED), None, 10).items
    assert [a.alarm_id for a in by_state] == [alarms[2].alarm_id]
    by_type = store.listing(ACME, AlarmQuery(type=AlarmType.COVER_OPEN), None, 10).items
    assert len(by_type) == 2
    reach = store.listing(ACME, AlarmQuery(meter_ids=frozenset({"m-2", "m-3"})), None, 10).items
    assert {a.key.subject_id for a in reach} == {"m-2", "m-3"}
    since = store.listing(ACME, AlarmQuery(until=T0 + timedelta(minutes=5)), None, 10).items
    assert [a.alarm_id for a in since] == [alarms[0].alarm_id]
    # the open ones (what an operator's console asks for most), in pages too
    open_first = store.listing(ACME, AlarmQuery(state=AlarmState.OPEN), None, 2)
    assert [a.alarm_id for a in open_first.items] == [alarms[3].alarm_id, alarms[1].alarm_id]
    open_rest = store.listing(ACME, AlarmQuery(state=AlarmState.OPEN), open_first.next_cursor, 2)
    assert ([a.alarm_id for a in open_rest.items], open_rest.next_cursor) == ([alarms[0].alarm_id], None)
    open_cover = store.listing(ACME, AlarmQuery(state=AlarmState.OPEN, type=AlarmType.COVER_OPEN), None, 10)
    assert [a.alarm_id for a in open_cover.items] == [alarms[1].alarm_id, alarms[0].alarm_id]


def test_active_and_of_meter_read_the_latest_alarm_of_each_key(store):
    open_one = raised(ACME, "m-1", AlarmType.COVER_OPEN)
    old = raised(ACME, "m-1", AlarmType.OUTAGE)
    store.save(ACME, open_one, 0)
    store.save(ACME, old, 0)
    store.save(ACME, replace(old, state=AlarmState.CLOSED, closed_at=T0), 1)

    assert [a.alarm_id for a in store.active(ACME)] == [open_one.alarm_id]
    assert {a.type for a in store.of_meter(ACME, "m-1", T0 - timedelta(days=1))} == {
        AlarmType.COVER_OPEN,
        AlarmType.OUTAGE,
    }
    assert [a.type for a in store.of_meter(ACME, "m-1", T0 + timedelta(days=1))] == [AlarmType.COVER_OPEN]
    assert store.of_meter(ACME, "m-2", T0 - timedelta(days=1)) == []


def test_settings_round_trip(store):
    settings = AlarmSettings(
        "acme",
        thresholds=AlarmThresholds(power_factor_min=Decimal("0.95"), silence_hours=Decimal("0.5")),
        nominal_voltage_v=Decimal("127.0"),
        contracted_demand_kw={"m-1": Decimal(900)},
        disabled=frozenset({AlarmType.CLOCK_RESET}),
    )
    assert store.settings(ACME) is None
    store.put_settings(ACME, settings)

    assert store.settings(ACME) == settings
    assert store.settings(ACME_CORP) is None


def test_vee_tally_keeps_failed_days_and_forgets_passed_ones(store):
    store.note_vee_day(ACME, "m-1", date(2026, 11, 18), ["spike", "gap"])
    store.note_vee_day(ACME, "m-1", date(2026, 11, 19), ["spike"])
    store.note_vee_day(ACME, "m-1", date(2026, 11, 19), [])
    store.note_vee_day(ACME, "m-1", date(2026, 11, 20), ["gap"])
    store.note_vee_day(ACME, "m-10", date(2026, 11, 20), ["gap"])

    assert store.vee_failed_days(ACME, "m-1", date(2026, 11, 14), date(2026, 11, 20)) == {
        date(2026, 11, 18): ("gap", "spike"),
        date(2026, 11, 20): ("gap",),
    }
    assert store.vee_failed_days(ACME_CORP, "m-1", date(2026, 11, 14), date(2026, 11, 20)) == {}
