"""Event-log, register and RTU-event messages through the translate function on moto: events stored
once and announced once per tenant and batch, outages derived, registers on the primary side,
last-seen times, and bad input quarantined with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hemera import aws
from hemera.definitions import EVENTS_SOURCE, METER_EVENTS_RECORDED, RTU_EVENTS_RULE, TRANSLATE_FUNCTION
from hemera.domain.meter_events import EventType, Outage, OutageSource, Subject
from hemera.domain.modbus.model import load_model
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.onboarding import register_tenant
from hemera.tenants import load_tenant_file
from hemera.wiring import device_event_ports, ingest_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import as_sqs_record, hx300_envelope, hx300_window
from tests.event_builders import (
    FRAUD_LOG,
    POWER_FAILURE_LOG,
    event_log_buffer,
    hd500_events_envelope,
    hd500_registers_envelope,
    rtu_event_payload,
)

TENANT, DEVICE, METER = "dlms-demo", "rtu-dl-01", "dl-m-1"
TOPIC = f"hemera/{TENANT}/{DEVICE}/up/telemetry"
EVENTS_TOPIC = f"hemera/{TENANT}/{DEVICE}/up/events"
CTX = TenantContext(TENANT)
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))
TENANT_YAML = f"""
id: {TENANT}
name: DLMS demo
country: BR
timezone: America/Sao_Paulo
customers: [{{id: fabrica, name: Fabrica, load_class: industry}}]
rtus: [{{id: {DEVICE}}}]
meters:
  - {{id: {METER}, model: hd500, protocol: dlms, rtu: {DEVICE}, customer: fabrica, peak_kw: 400, ct_ratio: 40}}
"""


@pytest.fixture
def cloud(moto_cloud, tmp_path: Path):
    path = tmp_path / f"{TENANT}.yaml"
    path.write_text(TENANT_YAML)
    register_tenant(ingest_ports(moto_cloud).registry, load_tenant_file(path))
    return moto_cloud


@pytest.fixture
def listener(cloud):
    """A queue that hears every `hemera.events` event on the platform bus."""
    events, sqs = aws.client(cloud.aws, "events"), aws.client(cloud.aws, "sqs")
    queue = sqs.create_queue(QueueName="events-listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="device-events",
        EventBusName=cloud.event_bus,
        EventPattern=json.dumps({"source": [EVENTS_SOURCE]}),
    )
    events.put_targets(Rule="device-events", EventBusName=cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}])

    def heard() -> list[dict]:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    return heard


def invoke(*records: dict) -> dict:
    return load_handler(TRANSLATE_FUNCTION)({"Records": list(records)}, LambdaContext("translate"))


def quarantined(settings) -> list:
    return list(ingest_ports(settings).quarantine.list(TENANT))


def outage_envelope(seq: int = 1):
    logs = {
        POWER_FAILURE_LOG: event_log_buffer([(T0, 1), (T0 + timedelta(minutes=45), 2)]),
        FRAUD_LOG: event_log_buffer([(T0 + timedelta(minutes=10), 40)]),
    }
    return hd500_events_envelope(TENANT, DEVICE, METER, logs, T0 + timedelta(hours=1), seq=seq)


def test_an_event_log_read_stores_events_and_its_outage_and_announces_them_once(cloud, listener):
    # Given an event-log readout with a 45-minute outage and a cover opened meanwhile
    record = as_sqs_record("e1", outage_envelope().to_json(), TOPIC)
    # When translate receives it, and then the same events again in a later readout
    assert invoke(record) == {"batchItemFailures": []}
    first = listener()
    invoke(as_sqs_record("e2", outage_envelope(seq=2).to_json(), TOPIC))
    second = listener()
    # Then the meter's events are stored
    ports = device_event_ports(cloud)
    stored = ports.events.events(CTX, Subject.METER, METER, *DAY)
    assert [(e.type, e.at) for e in stored] == [
        (EventType.POWER_DOWN, T0),
        (EventType.COVER_OPEN, T0 + timedelta(minutes=10)),
        (EventType.POWER_UP, T0 + timedelta(minutes=45)),
    ]
    # And one outage of 45 minutes from the last gasp
    assert ports.events.outages(CTX, METER, *DAY) == [
        Outage(METER, T0, T0 + timedelta(minutes=45), OutageSource.LAST_GASP)
    ]
    # And one MeterEventsRecorded listed the three events; the second readout announced nothing
    assert [(e["detail-type"], e["source"], e["detail"]["tenant"]) for e in first] == [
        (METER_EVENTS_RECORDED, EVENTS_SOURCE, TENANT)
    ]
    assert [x["type"] for x in first[0]["detail"]["events"]] == ["power_down", "cover_open", "power_up"]
    assert second == []
    # And the meter and its RTU were seen
    seen = ports.activity.last_seen(CTX)
    assert set(seen) == {(Subject.METER, METER), (Subject.RTU, DEVICE)}


def test_a_power_down_opens_an_outage_that_a_later_power_up_closes(cloud, listener):
    down = hd500_events_envelope(
        TENANT, DEVICE, METER, {POWER_FAILURE_LOG: event_log_buffer([(T0, 1)])}, T0 + timedelta(minutes=1)
    )
    invoke(as_sqs_record("d1", down.to_json(), TOPIC))
    events = device_event_ports(cloud).events
    assert events.outages(CTX, METER, *DAY) == [Outage(METER, T0, None, OutageSource.LAST_GASP)]
    up = hd500_events_envelope(
        TENANT,
        DEVICE,
        METER,
        {POWER_FAILURE_LOG: event_log_buffer([(T0 + timedelta(hours=2), 2)])},
        T0 + timedelta(hours=3),
        seq=2,
    )
    invoke(as_sqs_record("u1", up.to_json(), TOPIC))
    assert events.outages(CTX, METER, *DAY) == [
        Outage(METER, T0, T0 + timedelta(hours=2), OutageSource.LAST_GASP)
    ]
    assert len(listener()) == 2  # one announcement per batch that brought a new event


def test_registers_are_stored_on_the_primary_side(cloud, listener):
    invoke(as_sqs_record("r1", hd500_registers_envelope(TENANT, DEVICE, METER, T0).to_json(), TOPIC))
    registers = device_event_ports(cloud).registers
    (reading,) = registers.register_readings(CTX, METER, Channel.ACTIVE_IMPORT, *DAY)
    assert (reading.at, reading.value) == (T0, Decimal("5000") * 40)  # 5000 kWh x CT 40
    assert listener() == []  # no event, no announcement
    assert quarantined(cloud) == []


def test_rtu_events_are_stored_for_the_rtu_or_the_meter_and_bad_ones_quarantined(cloud, listener):
    overflow = rtu_event_payload(TENANT, DEVICE, T0, "buffer_overflow", dropped=12)
    failed = rtu_event_payload(
        TENANT, DEVICE, T0 + timedelta(minutes=5), "meter_read_failed", METER, reason="timeout"
    )
    foreign_meter = rtu_event_payload(TENANT, DEVICE, T0, "meter_read_failed", "someone-elses-meter")
    response = invoke(
        as_sqs_record("o1", overflow, EVENTS_TOPIC),
        as_sqs_record("f1", failed, EVENTS_TOPIC),
        as_sqs_record("x1", foreign_meter, EVENTS_TOPIC),
        as_sqs_record("x2", b"{not json", EVENTS_TOPIC),
    )
    assert response == {"batchItemFailures": []}
    events = device_event_ports(cloud).events
    assert [e.type for e in events.events(CTX, Subject.RTU, DEVICE, *DAY)] == [EventType.RTU_BUFFER_OVERFLOW]
    assert [e.detail for e in events.events(CTX, Subject.METER, METER, *DAY)] == [{"reason": "timeout"}]
    assert sorted(r.reason for r in quarantined(cloud)) == ["malformed_envelope", "unknown_meter"]
    (announced,) = listener()
    assert len(announced["detail"]["events"]) == 2
    assert RTU_EVENTS_RULE.topic_filter == "hemera/+/+/up/events"


def test_a_malformed_event_log_is_quarantined_not_dropped(cloud, listener):
    bad = hd500_events_envelope(TENANT, DEVICE, METER, {FRAUD_LOG: bytes([0x01, 0x01, 0x02, 0x00])}, T0)
    assert invoke(as_sqs_record("b1", bad.to_json(), TOPIC)) == {"batchItemFailures": []}
    assert [r.reason for r in quarantined(cloud)] == ["malformed_frame"]
    assert device_event_ports(cloud).events.events(CTX, Subject.METER, METER, *DAY) == []


def test_intervals_with_outage_bits_and_no_event_give_an_inferred_outage(moto_cloud):
    # Given an hx300 of sul-energia whose 14:15 and 15:15 intervals carry the outage bit, with
    # the intervals between them missing (empty slots: timestamp 0)
    lp = load_model("hx300").load_profile
    frame = hx300_window(T0, [100, 40, 0, 0, 0, 60, 100])
    data = bytearray.fromhex(frame.data)
    for index in (1, 5):
        at = 2 * (index * lp.record_size + lp.status.offset)
        data[at : at + 2] = (1).to_bytes(2, "big")
    for index in (2, 3, 4):
        at = 2 * (index * lp.record_size + lp.timestamp.offset)
        data[at : at + 4] = bytes(4)
    envelope = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", T0, [1])
    envelope = envelope.model_copy(update={"frames": [frame.model_copy(update={"data": data.hex()})]})
    invoke(as_sqs_record("i1", envelope.to_json(), "hemera/sul-energia/rtu-poa-01/up/telemetry"))
    # Then one inferred outage spans the flagged intervals
    outages = device_event_ports(moto_cloud).events.outages(TenantContext("sul-energia"), "sul-m-1001", *DAY)
    assert outages == [
        Outage(
            "sul-m-1001", T0 + timedelta(minutes=15), T0 + timedelta(minutes=90), OutageSource.INFERRED_COMMS
        )
    ]
