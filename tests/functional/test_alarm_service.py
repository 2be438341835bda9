"""The alarms service on the in-memory fakes: concurrent evaluations raise one alarm, the sweep
judges instantaneous values and closes quiet one-shot alarms, acknowledgement follows the
caller's role and reach, and the theft score rises with a tamper alarm."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from hemera.adapters.alarms_memory import MemoryAlarmAnnouncer, MemoryAlarmStore
from hemera.adapters.instantaneous_memory import MemoryInstantaneousStore
from hemera.adapters.memory import MemoryReadingStore, MemoryRegistry
from hemera.adapters.meter_events_memory import MemoryDeviceActivity
from hemera.domain.alarms import (
    AlarmForbidden,
    AlarmKey,
    AlarmNotFound,
    AlarmSettings,
    AlarmState,
    AlarmType,
    Observation,
)
from hemera.domain.instantaneous import InstantaneousReading, Quantity
from hemera.domain.meter_events import EventType, MeterEvent, Subject
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports.alarms import AlarmQuery
from hemera.services.access import Caller, Role
from hemera.services.alarms import (
    AlarmPorts,
    acknowledge_alarm,
    apply_observations,
    meter_theft_score,
    on_meter_events,
    sweep,
)

TENANT = "sul-energia"
CTX = TenantContext(TENANT)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def ports() -> AlarmPorts:
    registry = MemoryRegistry()
    registry.put_tenant(Tenant(TENANT, "Sul Energia", "BR", "America/Sao_Paulo"))
    registry.put_meters(
        CTX,
        [
            Meter(TENANT, "sul-m-1001", "hx300", "modbus", "rtu-poa-01", "metalurgica-sul"),
            Meter(TENANT, "sul-m-1002", "hx300", "modbus", "rtu-poa-01", "shopping-centro"),
        ],
    )
    store = MemoryAlarmStore()
    store.put_settings(CTX, AlarmSettings(TENANT, nominal_voltage_v=Decimal(127)))
    return AlarmPorts(
        alarms=store,
        settings=store,
        vee=store,
        announcer=MemoryAlarmAnnouncer(),
        registry=registry,
        readings=MemoryReadingStore(),
        instantaneous=MemoryInstantaneousStore(),
        activity=MemoryDeviceActivity(),
    )


def test_two_concurrent_evaluations_of_one_condition_raise_one_alarm(ports):
    key = AlarmKey(Subject.METER, "sul-m-1001", AlarmType.COVER_OPEN)
    barrier = threading.Barrier(8)

    def evaluate() -> None:
        barrier.wait()
        apply_observations(ports, CTX, [Observation(key, NOW, True, {"event": "cover_open"})])

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    (alarm,) = ports.alarms.listing(CTX, AlarmQuery(), None, 10).items
    assert (alarm.state, alarm.count) == (AlarmState.OPEN, 1)
    # an evaluation that lost the write may have announced too: with the same transition id
    assert {t.transition_id for t in ports.announcer.announced} == {f"{alarm.alarm_id}-t1"}


def test_the_sweep_judges_the_newest_instantaneous_reading_of_the_period(ports):
    low = InstantaneousReading(
        "sul-m-1001",
        NOW - timedelta(minutes=2),
        {
            Quantity.VOLTAGE_L1: Decimal("110.0"),
            Quantity.VOLTAGE_L2: Decimal("127"),
            Quantity.VOLTAGE_L3: Decimal("127"),
        },
    )
    ports.instantaneous.put(CTX, [low])

    outcome = sweep(ports, NOW, timedelta(minutes=5))

    assert outcome.tenants == 1
    (alarm,) = ports.alarms.listing(CTX, AlarmQuery(type=AlarmType.UNDERVOLTAGE), None, 10).items
    assert alarm.facts["phases"] == {"L1": {"voltage_v": "110.0", "pu": "0.866"}}
    assert alarm.facts["captured_at"] == low.captured_at.isoformat()
    # the next sweep has no new reading: the alarm is neither counted again nor closed
    sweep(ports, NOW + timedelta(minutes=5), timedelta(minutes=5))
    (again,) = ports.alarms.listing(CTX, AlarmQuery(type=AlarmType.UNDERVOLTAGE), None, 10).items
    assert (again.state, again.count) == (AlarmState.OPEN, 1)


def _voltages(minutes_before: int, l1: str) -> InstantaneousReading:
    return InstantaneousReading(
        "sul-m-1001",
        NOW - timedelta(minutes=minutes_before),
        {
            Quantity.VOLTAGE_L1: Decimal(l1),
            Quantity.VOLTAGE_L2: Decimal("127"),
            Quantity.VOLTAGE_L3: Decimal("127"),
        },
    )


def test_every_reading_since_the_last_sweep_is_judged_once_in_time_order(ports):
    # Given a sweep period of 5 minutes and, within the last 10, a low reading stored just after
    # the previous sweep ran (7 minutes ago) followed by two healthy ones
    period = timedelta(minutes=5)
    ports.instantaneous.put(CTX, [_voltages(7, "110.0"), _voltages(4, "127"), _voltages(1, "127")])

    # When the sweep runs (and, as a manual run or a faster scheduler may, runs again at once)
    sweep(ports, NOW, period)
    sweep(ports, NOW, period)

    # Then the low reading raised the alarm and the two healthy ones, each counted once, closed it
    (alarm,) = ports.alarms.listing(CTX, AlarmQuery(type=AlarmType.UNDERVOLTAGE), None, 10).items
    assert alarm.facts["captured_at"] == (NOW - timedelta(minutes=7)).isoformat()
    assert (alarm.state, alarm.closed_at) == (AlarmState.CLOSED, NOW - timedelta(minutes=1))
    transitions = [t.state for t in ports.announcer.announced if t.alarm_id == alarm.alarm_id]
    assert transitions == ["open", "closed"]


def test_the_sweep_closes_one_shot_alarms_after_a_quiet_day(ports):
    overflow = MeterEvent(Subject.RTU, "rtu-poa-01", "rtu-poa-01", EventType.RTU_BUFFER_OVERFLOW, NOW)
    on_meter_events(ports, CTX, [overflow])

    sweep(ports, NOW + timedelta(hours=23), timedelta(minutes=5))
    assert ports.alarms.listing(CTX, AlarmQuery(state=AlarmState.OPEN), None, 10).items
    sweep(ports, NOW + timedelta(hours=24), timedelta(minutes=5))

    (alarm,) = ports.alarms.listing(CTX, AlarmQuery(), None, 10).items
    assert alarm.state is AlarmState.CLOSED and alarm.closed_at == NOW + timedelta(hours=24)


def test_acknowledgement_follows_role_and_reach(ports):
    cover = MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.COVER_OPEN, NOW)
    (raised,) = on_meter_events(ports, CTX, [cover])
    own_customer = Caller(CTX, "metalurgica-sul", Role.CUSTOMER)
    other_customer = Caller(CTX, "shopping-centro", Role.CUSTOMER)
    other_tenant = Caller(TenantContext("coastal-power"), None, Role.OPERATOR)

    with pytest.raises(AlarmForbidden):
        acknowledge_alarm(ports, own_customer, raised.alarm_id, "user:c", NOW)
    with pytest.raises(AlarmForbidden):  # a customer's API key is confined like its users
        acknowledge_alarm(ports, Caller(CTX, "metalurgica-sul", Role.MACHINE), raised.alarm_id, "key:x", NOW)
    for stranger in (other_customer, other_tenant):
        with pytest.raises(AlarmNotFound):
            acknowledge_alarm(ports, stranger, raised.alarm_id, "user:x", NOW)

    acked = acknowledge_alarm(ports, Caller(CTX, None, Role.OPERATOR), raised.alarm_id, "user:ops", NOW)
    again = acknowledge_alarm(ports, Caller(CTX, None, Role.MACHINE), raised.alarm_id, "key:abc", NOW)

    assert (acked.state, acked.acknowledged_by) == (AlarmState.ACKNOWLEDGED, "user:ops")
    assert again == acked
    assert [t.state for t in ports.announcer.announced] == ["open", "acknowledged"]


def test_the_theft_score_rises_with_a_magnetic_tamper(ports):
    operator = Caller(CTX, None, Role.OPERATOR)
    before = meter_theft_score(ports, operator, "sul-m-1001", NOW)
    tamper = MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.MAGNETIC_TAMPER, NOW)
    on_meter_events(ports, CTX, [tamper])

    after = meter_theft_score(ports, operator, "sul-m-1001", NOW + timedelta(minutes=1))

    assert (before.score, after.score) == (0, 35)
    assert [f.kind for f in after.facts] == ["magnetic_tamper"]
    assert meter_theft_score(ports, operator, "sul-m-1002", NOW).score == 0


def test_the_theft_score_reads_the_consumption_drop_from_the_final_days(ports):
    from dataclasses import replace

    from hemera.adapters.final_series_memory import MemoryFinalSeries
    from hemera.domain.final_series import FinalDay, FinalInterval, FinalStatus, QualityFlag
    from hemera.domain.readings import Channel

    final = MemoryFinalSeries()
    today = NOW.astimezone(ZoneInfo("America/Sao_Paulo")).date()
    days = []
    for back in range(1, 36):
        day = today - timedelta(days=back)
        kwh = Decimal(300) if back <= 7 else Decimal(1000)  # a 70 % drop in the last week
        start = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
        interval = FinalInterval(start, 60, kwh, kwh, FinalStatus.ACTUAL, QualityFlag.ACTUAL, 17)
        days.append(
            FinalDay("sul-m-1001", Channel.ACTIVE_IMPORT, day, "America/Sao_Paulo", 60, 1, (interval,), NOW)
        )
    final.save(CTX, days)

    score = meter_theft_score(
        replace(ports, final_series=final), Caller(CTX, None, Role.OPERATOR), "sul-m-1001", NOW
    )

    (fact,) = score.facts
    assert (fact.kind, fact.points, fact.evidence["drop_pct"]) == ("consumption_drop", 21, "70.0")
