"""The in-memory device event log, registers and activity and their DynamoDB adapters pass the same
cases, so the fakes other capabilities test with cannot drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.meter_events_memory import MemoryDeviceActivity, MemoryMeterEvents, MemoryRegisters
from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.readings import Channel
from hemera.domain.registers import RegisterReading
from hemera.domain.tenancy import TenantContext
from hemera.wiring import device_event_ports

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ACME, OTHER = TenantContext("acme"), TenantContext("acme-corp")  # a prefix of each other's keys


@pytest.fixture(params=["memory", "aws"])
def stores(request, moto_cloud):
    if request.param == "memory":
        return MemoryMeterEvents(), MemoryRegisters(), MemoryDeviceActivity()
    ports = device_event_ports(moto_cloud)
    return ports.events, ports.registers, ports.activity


def ev(
    kind: EventType, minutes: float, subject_id: str = "m-1", subject: Subject = Subject.METER
) -> MeterEvent:
    return MeterEvent(
        subject, subject_id, "rtu-1", kind, T0 + timedelta(minutes=minutes), code=7, detail={"log": "x"}
    )


def test_events_are_recorded_once_and_read_back_by_subject_and_range(stores):
    events, *_ = stores
    down, up = ev(EventType.POWER_DOWN, 0), ev(EventType.POWER_UP, 45)
    overflow = ev(EventType.RTU_BUFFER_OVERFLOW, 5, "rtu-1", Subject.RTU)
    # Given two events not stored yet
    assert events.unseen(ACME, [down, up, down]) == [down, up]
    # When they are recorded twice (a redelivered batch)
    assert events.record(ACME, [down, up, overflow]) == [down, up, overflow]
    assert events.record(ACME, [down, up]) == []
    assert events.unseen(ACME, [down, up]) == []
    # Then the meter's events of a half-open range come back in time order, whole
    assert events.events(ACME, Subject.METER, "m-1", T0, T0 + timedelta(hours=1)) == [down, up]
    assert events.events(ACME, Subject.METER, "m-1", T0, T0 + timedelta(minutes=45)) == [down]
    assert events.events(ACME, Subject.RTU, "rtu-1", T0, T0 + timedelta(hours=1)) == [overflow]
    # And another tenant sees none of them
    assert events.events(OTHER, Subject.METER, "m-1", T0, T0 + timedelta(hours=1)) == []


def test_outages_are_updated_by_identity_discarded_and_found_when_they_overlap(stores):
    events, *_ = stores
    open_ = Outage("m-1", T0, None, OutageSource.LAST_GASP)
    events.save_outages(
        ACME,
        [open_, Outage("m-2", T0 + timedelta(hours=2), T0 + timedelta(hours=3), OutageSource.INFERRED_COMMS)],
    )
    # An open outage overlaps any later range
    assert events.outages(ACME, "m-1", T0 + timedelta(days=3), T0 + timedelta(days=4)) == [open_]
    closed = Outage("m-1", T0, T0 + timedelta(minutes=45), OutageSource.LAST_GASP)
    events.save_outages(ACME, [closed])
    assert events.outages(ACME, "m-1", T0 - timedelta(hours=1), T0 + timedelta(days=1)) == [closed]
    # One that started before the range and ends inside it is included; one that ended before, not
    assert events.outages(ACME, "m-1", T0 + timedelta(minutes=30), T0 + timedelta(hours=1)) == [closed]
    assert events.outages(ACME, "m-1", T0 + timedelta(minutes=45), T0 + timedelta(hours=1)) == []
    assert [o.meter_id for o in events.tenant_outages(ACME, T0, T0 + timedelta(days=1))] == ["m-1", "m-2"]
    assert events.tenant_outages(OTHER, T0, T0 + timedelta(days=1)) == []
    events.discard_outages(ACME, [closed])
    assert events.outages(ACME, "m-1", T0, T0 + timedelta(days=1)) == []


def test_register_readings_are_idempotent_and_read_by_channel_and_range(stores):
    _, registers, _ = stores
    first = RegisterReading("m-1", Channel.ACTIVE_IMPORT, T0, Decimal("123456.789"))
    second = RegisterReading("m-1", Channel.ACTIVE_IMPORT, T0 + timedelta(days=1), Decimal("123500.001"))
    other_channel = RegisterReading("m-1", Channel.REACTIVE_IMPORT, T0, Decimal("5"))
    registers.record_registers(ACME, [first, second, other_channel])
    registers.record_registers(ACME, [first])
    assert registers.register_readings(ACME, "m-1", Channel.ACTIVE_IMPORT, T0, T0 + timedelta(days=2)) == [
        first,
        second,
    ]
    assert registers.register_readings(ACME, "m-1", Channel.ACTIVE_IMPORT, T0, T0 + timedelta(days=1)) == [
        first
    ]
    assert registers.register_readings(OTHER, "m-1", Channel.ACTIVE_IMPORT, T0, T0 + timedelta(days=2)) == []


def test_last_seen_times_are_the_latest_deliveries_of_the_tenants_subjects(stores):
    *_, activity = stores
    meter, rtu, other_meter = (Subject.METER, "m-1"), (Subject.RTU, "rtu-1"), (Subject.METER, "m-2")
    activity.touch(ACME, {meter: T0, rtu: T0, other_meter: T0})
    # the next batch (arrival times grow) moves the subjects it names, and only those
    activity.touch(ACME, {meter: T0 + timedelta(minutes=15), rtu: T0 + timedelta(minutes=15)})
    assert activity.last_seen(ACME) == {
        meter: T0 + timedelta(minutes=15),
        rtu: T0 + timedelta(minutes=15),
        other_meter: T0,
    }
    assert activity.last_seen(OTHER) == {}
