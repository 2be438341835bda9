"""The translate function on moto: Lambda-shaped SQS events in, stored intervals and quarantine out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.wiring import ingest_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import archived_envelopes, as_sqs_record, hx300_envelope

TOPIC = "hemera/sul-energia/rtu-poa-01/up/telemetry"
DAY = datetime(2026, 11, 20, 3, tzinfo=UTC)  # local midnight in São Paulo
WH = [1000 + i for i in range(96)]


def invoke(*records: dict) -> dict:
    handler = load_handler(TRANSLATE_FUNCTION)
    return handler({"Records": list(records)}, LambdaContext("translate"))


def stored(settings, meter="sul-m-1001", tenant="sul-energia"):
    return ingest_ports(settings).store.load_profile(
        TenantContext(tenant), meter, Channel.ACTIVE_IMPORT, DAY, DAY.replace(day=21)
    )


def quarantined(settings, tenant):
    return list(ingest_ports(settings).quarantine.list(tenant))


def test_a_day_of_intervals_is_stored_with_exact_values(moto_cloud):
    envelope = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH)
    response = invoke(as_sqs_record("m1", envelope.to_json(), TOPIC))
    assert response == {"batchItemFailures": []}
    intervals = stored(moto_cloud)
    assert len(intervals) == 96
    assert [int(r.value * 1000) for r in intervals] == WH
    assert intervals[0].start == DAY


def test_redelivery_has_no_further_effect(moto_cloud):
    body = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH).to_json()
    invoke(as_sqs_record("m1", body, TOPIC))
    invoke(as_sqs_record("m1", body, TOPIC), as_sqs_record("m2", body, TOPIC))
    intervals = stored(moto_cloud)
    assert len(intervals) == 96 and sum(int(r.value * 1000) for r in intervals) == sum(WH)


def test_the_raw_envelopes_are_archived_per_tenant_and_hour_as_compressed_json_lines(moto_cloud):
    from hemera import aws

    # Given envelope 42, delivered twice, and a different envelope 42 after the RTU lost its outbox
    body = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[:11], seq=42).to_json()
    again = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[11:22], seq=42).to_json()
    invoke(
        as_sqs_record("m1", body, TOPIC), as_sqs_record("m2", body, TOPIC), as_sqs_record("m3", again, TOPIC)
    )
    # Then one gzip JSON Lines object under the tenant and the hour of arrival holds both versions
    # byte for byte, once each (the redelivery is a duplicate and not archived again)
    s3 = aws.client(moto_cloud.aws, "s3")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=moto_cloud.raw_bucket)["Contents"]]
    assert key.startswith("tenants/sul-energia/raw/2026/11/21/") and key.endswith(".jsonl.gz")
    head = s3.head_object(Bucket=moto_cloud.raw_bucket, Key=key)
    assert head["ContentEncoding"] == "gzip"
    archived = archived_envelopes(moto_cloud.aws, moto_cloud.raw_bucket, "sul-energia")
    assert sorted(e.payload for e in archived) == sorted([body, again])
    assert {(e.device_id, e.meter_id, e.seq, e.message_id) for e in archived} == {
        ("rtu-poa-01", "sul-m-1001", 42, "m1"),
        ("rtu-poa-01", "sul-m-1001", 42, "m3"),
    }


def test_a_redelivered_envelope_is_a_duplicate_by_device_and_sequence(moto_cloud, caplog):
    body = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH, seq=7).to_json()
    invoke(as_sqs_record("m1", body, TOPIC))
    before = archived_envelopes(moto_cloud.aws, moto_cloud.raw_bucket, "sul-energia")
    # When the same envelope comes again under another message id (the broker redelivered it)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = invoke(as_sqs_record("m9", body, TOPIC))
    # Then it is recognised from the ledger: nothing is written, archived or announced again
    assert response == {"batchItemFailures": []}
    (summary,) = [r for r in caplog.records if r.getMessage() == "batch ingested"]
    assert (summary.duplicate, summary.stored, summary.items_written) == (1, 0, 0)
    assert archived_envelopes(moto_cloud.aws, moto_cloud.raw_bucket, "sul-energia") == before


def test_a_day_sent_at_another_interval_length_is_quarantined_not_misplaced(moto_cloud):
    from hemera.domain.readings import Channel as Ch
    from hemera.domain.readings import IntervalReading, Unit

    # Given a day stored at 15 minutes, then 30-minute data for the same meter-day
    invoke(
        as_sqs_record(
            "m1", hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[:4]).to_json(), TOPIC
        )
    )
    store = ingest_ports(moto_cloud).store
    thirty = IntervalReading("sul-m-1001", Ch.ACTIVE_IMPORT, DAY, 30, Decimal("1"), Unit.KWH)
    # When it is merged, it is refused with a reason instead of landing in 15-minute slots
    from hemera.domain.errors import MalformedFrame

    with pytest.raises(MalformedFrame, match="30-minute intervals"):
        store.merge_intervals(TenantContext("sul-energia"), [thirty])
    assert [r.value for r in stored(moto_cloud)][:4] == [Decimal(w) / 1000 for w in WH[:4]]


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"\x00\xffgarbage", TOPIC, "malformed_envelope"),
        (
            hx300_envelope("coastal-power", "rtu-syd-01", "cp-m-2001", DAY, WH[:3]).to_json(),
            TOPIC,
            "topic_mismatch",
        ),
        (
            hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-9999", DAY, WH[:3]).to_json(),
            TOPIC,
            "unknown_meter",
        ),
    ],
)
def test_bad_messages_are_quarantined_under_their_tenant_and_the_batch_goes_on(
    moto_cloud, payload, topic, reason
):
    good = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH).to_json()
    response = invoke(as_sqs_record("bad", payload, topic), as_sqs_record("good", good, TOPIC))
    assert response == {"batchItemFailures": []}
    records = quarantined(moto_cloud, "sul-energia")
    assert [(r.reason, r.message_id, r.original) for r in records] == [(reason, "bad", payload)]
    assert len(stored(moto_cloud)) == 96


def test_an_undecodable_frame_is_quarantined_with_the_reason(moto_cloud):
    envelope = json.loads(hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[:11]).to_json())
    envelope["frames"][0]["count"] = 120
    envelope["frames"][0]["data"] = envelope["frames"][0]["data"][:480]
    invoke(as_sqs_record("bad", json.dumps(envelope).encode(), TOPIC))
    (record,) = quarantined(moto_cloud, "sul-energia")
    assert record.reason == "malformed_frame" and "11-register records" in record.detail


def test_a_transient_failure_fails_only_its_record(moto_cloud):
    from hemera import aws

    good = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH).to_json()
    aws.client(moto_cloud.aws, "dynamodb").delete_table(TableName=moto_cloud.readings_table)
    response = invoke(as_sqs_record("m1", good, TOPIC), as_sqs_record("m2", b"not json", TOPIC))
    # m1 cannot be stored (the table is gone): retried by SQS, then the DLQ. m2 is bad input:
    # quarantined, so it counts as handled.
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [r.reason for r in quarantined(moto_cloud, "sul-energia")] == ["malformed_envelope"]


def test_a_transformer_rated_meter_is_stored_on_the_primary_side(moto_cloud):
    from hemera.domain.registry import Meter

    # Given sul-m-1001 behind a 400/5 CT and a 13.8 kV / 115 V VT (multiplier 80 x 120 = 9,600)
    registry = ingest_ports(moto_cloud).registry
    meter = Meter(
        "sul-energia", "sul-m-1001", "hx300", "modbus", "rtu-poa-01", "metalurgica-sul", Decimal(9600)
    )
    registry.put_meter(TenantContext("sul-energia"), meter)
    envelope = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, [125] * 11)
    # When its secondary-side readings arrive
    invoke(as_sqs_record("m1", envelope.to_json(), TOPIC))
    # Then the store holds primary-side kWh and keeps the meter's own count as the raw value
    intervals = stored(moto_cloud)
    assert [(r.value, r.raw_value) for r in intervals] == [(Decimal("1200.000"), 125)] * 11


def test_a_log_line_never_carries_the_previous_records_tenant(moto_cloud):
    import io

    from hemera.observability import logger

    good = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[:3]).to_json()
    garbage = {**as_sqs_record("m2", b"x", TOPIC), "body": "not a rule message"}
    stream, handler = io.StringIO(), logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    try:
        invoke(as_sqs_record("m1", good, TOPIC), garbage)
    finally:
        handler.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (quarantined,) = [line for line in lines if line["message"] == "message quarantined"]
    assert quarantined["correlation_id"] == "m2" and "tenant" not in quarantined


def canonical_envelope(meter: str, frames: list[dict], seq: int = 1) -> bytes:
    return json.dumps(
        {
            "schema": "hemera.envelope/1",
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "meter": meter,
            "model": "acme-connector",
            "protocol": "canonical",
            "seq": seq,
            "collected_at": "2026-11-20T12:00:00Z",
            "frames": frames,
        }
    ).encode()


@pytest.fixture
def connector_meter(moto_cloud):
    """sul-x-1, a meter read by a third-party connector that already speaks canonical JSON."""
    from hemera.domain.registry import Meter

    ingest_ports(moto_cloud).registry.put_meter(
        TenantContext("sul-energia"),
        Meter("sul-energia", "sul-x-1", "acme-connector", "canonical", "rtu-poa-01", "c"),
    )
    return "sul-x-1"


def canonical_frame(intervals: list[dict], change: dict | None = None) -> dict:
    frame = {"kind": "load_profile", "channel": "active_import", "unit": "kWh", "interval_minutes": 15}
    return {**frame, "intervals": intervals, **(change or {})}


def test_a_third_party_connectors_canonical_intervals_are_stored(moto_cloud, connector_meter):
    frame = canonical_frame(
        [
            {"start": "2026-11-20T00:00:00-03:00", "value": "12.5"},
            {"start": "2026-11-20T00:15:00-03:00", "value": "13.25", "quality": "E"},
        ]
    )
    # When it arrives
    assert invoke(as_sqs_record("c1", canonical_envelope("sul-x-1", [frame]), TOPIC)) == {
        "batchItemFailures": []
    }
    # Then the intervals are stored as sent (UTC starts, exact values, the connector's quality flag)
    got = stored(moto_cloud, meter="sul-x-1")
    assert [(r.start.isoformat(), r.value, r.quality_flag) for r in got] == [
        ("2026-11-20T03:00:00+00:00", Decimal("12.5"), "A"),
        ("2026-11-20T03:15:00+00:00", Decimal("13.25"), "E"),
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"unit": "kvarh"}, "malformed_frame"),
        ({"intervals": [{"start": "2026-11-20T00:07:00-03:00", "value": "1"}]}, "malformed_frame"),
        ({"intervals": [{"start": "2026-11-20T00:00:00", "value": "1"}]}, "malformed_envelope"),
        ({"intervals": [{"start": "2026-11-20T00:00:00Z", "value": "NaN"}]}, "malformed_envelope"),
    ],
)
def test_bad_canonical_intervals_are_quarantined_with_a_reason(moto_cloud, connector_meter, change, reason):
    frame = canonical_frame([{"start": "2026-11-20T00:00:00-03:00", "value": "1"}], change)
    invoke(as_sqs_record("c1", canonical_envelope("sul-x-1", [frame]), TOPIC))
    assert [r.reason for r in quarantined(moto_cloud, "sul-energia")] == [reason]


def test_changed_meter_days_are_announced_on_the_event_bus(moto_cloud):
    from hemera import aws
    from hemera.definitions import EVENT_BUS, SERIES_CHANGED

    # Given a rule on the platform bus that sends every change event to a queue
    events, sqs = aws.client(moto_cloud.aws, "events"), aws.client(moto_cloud.aws, "sqs")
    queue = sqs.create_queue(QueueName="listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="all-changes",
        EventBusName=moto_cloud.event_bus,
        EventPattern=json.dumps({"source": [EVENT_BUS.source]}),
    )
    events.put_targets(
        Rule="all-changes", EventBusName=moto_cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}]
    )

    def heard():
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return sorted(
            (c["channel"], c["day"], c["version"], e["detail-type"], e["detail"]["tenant"])
            for e in (json.loads(m["Body"]) for m in got)
            for c in e["detail"]["changes"]
        )

    # When a day arrives, arrives again, then one channel is corrected
    body = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, WH[:4]).to_json()
    invoke(as_sqs_record("m1", body, TOPIC))
    first = heard()
    invoke(as_sqs_record("m1", body, TOPIC))
    second = heard()
    # Then each of the four channels' days is announced once at version 1 (in one event), a
    # redelivery announces nothing
    assert first == sorted(
        (c, "2026-11-20", 1, SERIES_CHANGED, "sul-energia")
        for c in ("active_import", "active_export", "reactive_import", "reactive_export")
    )
    assert second == []
