"""Modbus event-log envelopes through the translate function on moto: an hx300's window (words
written by hand) becomes stored canonical events and the outage they describe, a power up alone
gives the outage its reported duration, and a window the map does not allow is quarantined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.domain.envelope import Envelope, FrameKind, ModbusFrame, Protocol, build_envelope
from hemera.domain.meter_events import EventType, Outage, OutageSource, Subject
from hemera.domain.tenancy import TenantContext
from hemera.wiring import device_event_ports, ingest_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import as_sqs_record

TENANT, DEVICE, METER = "sul-energia", "rtu-poa-01", "sul-m-1001"  # an hx300
TOPIC = f"hemera/{TENANT}/{DEVICE}/up/telemetry"
CTX = TenantContext(TENANT)
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EPOCH = int(T0.timestamp())
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def record(epoch: int, code: int, detail: int = 0) -> list[int]:
    """hx300 event record: u32 time stamp, u16 code, u32 detail, most significant word first."""
    return [epoch >> 16, epoch & 0xFFFF, code, detail >> 16, detail & 0xFFFF]


def events_envelope(words: list[int], seq: int = 1, address: int = 410) -> Envelope:
    frame = ModbusFrame(
        kind=FrameKind.EVENTS,
        unit_id=1,
        function=3,
        address=address,
        count=len(words),
        data="".join(f"{w:04x}" for w in words),
    )
    return build_envelope(
        tenant=TENANT,
        device=DEVICE,
        meter=METER,
        model="hx300",
        protocol=Protocol.MODBUS,
        seq=seq,
        collected_at=T0 + timedelta(hours=2),
        frames=[frame],
    )


def invoke(envelope: Envelope, message_id: str = "m1") -> dict:
    record_ = as_sqs_record(message_id, envelope.to_json(), TOPIC)
    return load_handler(TRANSLATE_FUNCTION)({"Records": [record_]}, LambdaContext("translate"))


def test_an_hx300_event_window_stores_its_events_and_the_outage(moto_cloud):
    # Given a window with a 45-minute outage, a phase loss of L3 and a log-cleared entry
    words = (
        record(EPOCH, 1)
        + record(EPOCH + 2700, 2, 2700)
        + record(EPOCH + 3600, 20, 3)
        + record(EPOCH + 3700, 255)
        + [0] * 5 * 20
    )
    # When translate receives it
    assert invoke(events_envelope(words)) == {"batchItemFailures": []}
    # Then the events are stored with their details, the cleared log skipped
    ports = device_event_ports(moto_cloud)
    stored = ports.events.events(CTX, Subject.METER, METER, *DAY)
    assert [(e.type, e.at, e.code, e.detail) for e in stored] == [
        (EventType.POWER_DOWN, T0, 1, {}),
        (EventType.POWER_UP, T0 + timedelta(minutes=45), 2, {"duration_s": 2700}),
        (EventType.PHASE_LOSS, T0 + timedelta(hours=1), 20, {"phase": 3}),
    ]
    assert {e.device_id for e in stored} == {DEVICE}
    # and the outage is the meter's last gasp to its power up
    assert ports.events.outages(CTX, METER, *DAY) == [
        Outage(METER, T0, T0 + timedelta(minutes=45), OutageSource.LAST_GASP)
    ]


def test_a_power_up_alone_opens_its_outage_its_reported_duration_earlier(moto_cloud):
    # Given a window holding only the power up (the power down fell out of the log)
    words = record(EPOCH + 2700, 2, 2700) + [0] * 5 * 23
    invoke(events_envelope(words))
    assert device_event_ports(moto_cloud).events.outages(CTX, METER, *DAY) == [
        Outage(METER, T0, T0 + timedelta(minutes=45), OutageSource.POWER_UP)
    ]


def test_a_window_the_map_does_not_allow_is_quarantined_and_nothing_is_stored(moto_cloud):
    # Given a window whose second entry has a code the hx300 table does not list
    words = record(EPOCH, 10) + record(EPOCH + 60, 99) + [0] * 5 * 22
    # When translate receives it
    assert invoke(events_envelope(words)) == {"batchItemFailures": []}
    # Then it is quarantined with the reason, and not even its good entry is stored
    assert [r.reason for r in ingest_ports(moto_cloud).quarantine.list(TENANT)] == ["malformed_frame"]
    assert device_event_ports(moto_cloud).events.events(CTX, Subject.METER, METER, *DAY) == []
