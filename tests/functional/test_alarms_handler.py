"""The alarms function on moto: platform events reach its queue through the EventBridge rules the
local cloud creates from the definitions; it stores alarms and puts one `AlarmChanged` event per
transition on the bus (read back through a rule of this test); the sweep finds silent devices."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from hemera.adapters.eventbridge import EventBridgeChangeEvents
from hemera.definitions import (
    ALARM_CHANGED,
    ALARM_QUEUE,
    ALARMS_FUNCTION,
    ALARMS_SOURCE,
    EVENT_BUS,
    EVENTS_SOURCE,
    METER_EVENTS_RECORDED,
    READS_EXHAUSTED,
    VEE_SOURCE,
)
from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms import AlarmState, AlarmType
from hemera.domain.meter_events import EventType, MeterEvent, Subject, event_detail
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.tenancy import TenantContext
from hemera.ports.alarms import AlarmQuery
from hemera.services.alarms import register_alarm_settings
from hemera.tenants import load_tenant_file
from hemera.wiring import alarm_ports, device_activity, ingest_ports
from hemera_local.bridge import LambdaContext, load_handler, sqs_event
from tests.conftest import TENANTS_DIR

TENANT = "sul-energia"
METER = "sul-m-1001"  # contracted demand 900 kW: the overrun limit is 945 kW
CTX = TenantContext(TENANT, correlation_id="functional")
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@pytest.fixture
def cloud(moto_cloud: Any) -> Any:
    register_alarm_settings(
        alarm_ports(moto_cloud).settings, load_tenant_file(TENANTS_DIR / f"{TENANT}.yaml")
    )
    # A rule of this test: every AlarmChanged the function puts on the bus lands in this queue.
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="test-alarm-changed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="test-alarm-changed",
        EventBusName=moto_cloud.event_bus,
        EventPattern=json.dumps({"source": [ALARMS_SOURCE], "detail-type": [ALARM_CHANGED]}),
    )
    events.put_targets(
        Rule="test-alarm-changed", EventBusName=moto_cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}]
    )
    return moto_cloud


def put(settings: Any, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": settings.event_bus,
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )


def drain(queue_name: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(ALARMS_FUNCTION)(event, LambdaContext(ALARMS_FUNCTION.name))


def run_alarms() -> dict[str, Any]:
    """Hand everything the rules queued for the alarms function to it, as one SQS batch."""
    messages = drain(ALARM_QUEUE.local_name)
    assert messages, "the rules delivered nothing to the alarms queue"
    return invoke(
        sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{ALARM_QUEUE.local_name}", "us-east-1")
    )


def announced() -> list[AlarmTransition]:
    return [AlarmTransition.from_detail(json.loads(m["Body"])["detail"]) for m in drain("test-alarm-changed")]


def meter_events(*events: MeterEvent) -> dict[str, Any]:
    return {"tenant": TENANT, "events": [event_detail(e) for e in events]}


def event(kind: EventType, at: datetime) -> MeterEvent:
    return MeterEvent(Subject.METER, METER, "rtu-poa-01", kind, at)


def test_an_outage_opens_at_power_down_and_closes_at_power_up(cloud):
    # Given the last gasp of a meter and a cover opened on it
    put(cloud, EVENTS_SOURCE, METER_EVENTS_RECORDED, meter_events(event(EventType.POWER_DOWN, T0)))
    put(cloud, EVENTS_SOURCE, METER_EVENTS_RECORDED, meter_events(event(EventType.COVER_OPEN, T0)))

    # When the alarms function evaluates them
    assert run_alarms() == {"batchItemFailures": []}

    # Then two alarms are open and both transitions were announced
    store = alarm_ports(cloud).alarms
    open_alarms = store.listing(CTX, AlarmQuery(state=AlarmState.OPEN), None, 10).items
    assert {a.type for a in open_alarms} == {AlarmType.OUTAGE, AlarmType.COVER_OPEN}
    first = announced()
    assert {(t.alarm_type, t.previous_state, t.state) for t in first} == {
        ("outage", None, "open"),
        ("cover_open", None, "open"),
    }
    assert all(t.tenant_id == TENANT and t.subject_id == METER for t in first)

    # When the power comes back 45 minutes later (and the last gasp is delivered again)
    up = event(EventType.POWER_UP, T0 + timedelta(minutes=45))
    put(cloud, EVENTS_SOURCE, METER_EVENTS_RECORDED, meter_events(event(EventType.POWER_DOWN, T0), up))
    assert run_alarms() == {"batchItemFailures": []}

    # Then the outage alarm is closed (not duplicated) and its closing announced
    (outage,) = store.listing(CTX, AlarmQuery(type=AlarmType.OUTAGE), None, 10).items
    assert (outage.state, outage.count, outage.closed_at) == (AlarmState.CLOSED, 1, up.at)
    assert [(t.alarm_id, t.state) for t in announced()] == [(outage.alarm_id, "closed")]


def intervals(channel: Channel, values: list[str], unit: Unit) -> list[IntervalReading]:
    start = datetime.combine(T0.date(), time(14), tzinfo=UTC)
    return [
        IntervalReading(METER, channel, start + timedelta(minutes=15 * i), 15, Decimal(v), unit, raw_value=i)
        for i, v in enumerate(values)
    ]


def test_demand_overrun_and_low_power_factor_name_their_interval(cloud):
    # Given intervals stored the way ingest stores them (announced on the bus): 14:15 draws
    # 960 kW (> fora ponta's 900 kW + 5 %), and the clock hour 14:00-15:00 UTC (11 h in Sao Paulo,
    # an inductive hour of the a4-azul tariff) has P 840 kWh, Q 390 kvarh: PF 0.9070 < 0.92
    bus = EventBridgeChangeEvents(boto3.client("events"), cloud.event_bus, EVENT_BUS.source)
    store = ingest_ports(cloud).store
    active = intervals(Channel.ACTIVE_IMPORT, ["200", "240", "200", "200"], Unit.KWH)
    reactive = intervals(Channel.REACTIVE_IMPORT, ["40", "50", "150", "150"], Unit.KVARH)
    store.merge_intervals(CTX, active + reactive, lambda changes: bus.announce(CTX, changes))

    assert run_alarms() == {"batchItemFailures": []}

    alarms = {
        a.type: a for a in alarm_ports(cloud).alarms.listing(CTX, AlarmQuery(meter_id=METER), None, 10).items
    }
    demand, pf = alarms[AlarmType.DEMAND_OVERRUN], alarms[AlarmType.LOW_POWER_FACTOR]
    assert demand.facts["interval_start"] == "2026-11-20T14:15:00+00:00"
    assert demand.facts["demand_kw"] == "960.000"
    assert (pf.facts["interval_start"], pf.facts["interval_end"]) == (
        "2026-11-20T14:00:00+00:00",
        "2026-11-20T15:00:00+00:00",
    )
    assert (pf.facts["power_factor"], pf.facts["reactive"]) == ("0.9070", "inductive")
    assert {t.alarm_type for t in announced()} == {"demand_overrun", "low_power_factor"}


def test_repeated_vee_failures_and_exhausted_reads(cloud):
    days = [
        {
            "meter_id": METER,
            "channel": "active_import",
            "local_day": (date(2026, 11, 18) + timedelta(days=i)).isoformat(),
            "version": 1,
            "previous_version": None,
            "cause": "ingest",
            "failed_rules": ["spike"],
            "estimated": 1,
            "missing": 0,
        }
        for i in range(3)
    ]
    put(cloud, VEE_SOURCE, "FinalDaysChanged", {"tenant": TENANT, "days": days})
    put(
        cloud,
        VEE_SOURCE,
        READS_EXHAUSTED,
        {
            "tenant": TENANT,
            "meter_id": METER,
            "device_id": "rtu-poa-01",
            "channel": "active_import",
            "gap_start": "2026-11-19T02:00:00+00:00",
            "gap_end": "2026-11-19T04:00:00+00:00",
            "attempts": 5,
        },
    )

    assert run_alarms() == {"batchItemFailures": []}

    alarms = {a.type: a for a in alarm_ports(cloud).alarms.listing(CTX, AlarmQuery(), None, 10).items}
    assert sorted(alarms[AlarmType.VEE_FAILURES].facts["failed_days"]) == [
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ]
    assert alarms[AlarmType.READS_EXHAUSTED].facts["gap_start"] == "2026-11-19T02:00:00+00:00"


def test_a_malformed_event_fails_alone(cloud):
    put(cloud, EVENTS_SOURCE, METER_EVENTS_RECORDED, {"tenant": TENANT, "events": [{"type": "nonsense"}]})
    put(cloud, EVENTS_SOURCE, METER_EVENTS_RECORDED, meter_events(event(EventType.MAGNETIC_TAMPER, T0)))
    messages = drain(ALARM_QUEUE.local_name)
    bad = next(m for m in messages if "nonsense" in m["Body"])

    result = invoke(sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1"))

    assert result == {"batchItemFailures": [{"itemIdentifier": bad["MessageId"]}]}
    assert [t.alarm_type for t in announced()] == ["magnetic_tamper"]


def test_the_sweep_raises_a_communication_failure_for_a_silent_rtu(cloud):
    # Given an RTU last heard from 7 hours ago (the default limit is 6) and a meter heard now
    now = datetime.now(UTC)
    device_activity(cloud).touch(
        CTX, {(Subject.RTU, "rtu-poa-01"): now - timedelta(hours=7), (Subject.METER, METER): now}
    )

    # When the schedule fires the sweep (EventBridge sends the payload; locally it is `detail`)
    result = invoke({"detail": {"job": "alarm_sweep"}})

    assert result["transitions"] == 1
    (alarm,) = (
        alarm_ports(cloud)
        .alarms.listing(CTX, AlarmQuery(type=AlarmType.COMMUNICATION_FAILURE), None, 10)
        .items
    )
    assert (alarm.key.subject, alarm.key.subject_id) == (Subject.RTU, "rtu-poa-01")
    assert alarm.facts["silent_hours"] >= 7
    assert [t.alarm_type for t in announced()] == ["communication_failure"]

    # When it is heard from again, the next sweep closes the alarm (the EventBridge payload form)
    device_activity(cloud).touch(CTX, {(Subject.RTU, "rtu-poa-01"): datetime.now(UTC)})
    assert invoke({"job": "alarm_sweep"})["transitions"] == 1
    (alarm,) = (
        alarm_ports(cloud)
        .alarms.listing(CTX, AlarmQuery(type=AlarmType.COMMUNICATION_FAILURE), None, 10)
        .items
    )
    assert alarm.state is AlarmState.CLOSED
