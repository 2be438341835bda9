"""Quarantine replay on moto: messages rejected by the translate function, replayed after a fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.domain.errors import QuarantineKeyOutsideTenant, QuarantineNotReplayable
from hemera.domain.readings import Channel
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.ports import QuarantineRecord
from hemera.services.quarantine import ALL, ReplayStatus, replay
from hemera.wiring import ingest_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import as_sqs_record, hx300_envelope

TENANT = "sul-energia"
TOPIC = "hemera/sul-energia/rtu-poa-01/up/telemetry"
DAY = datetime(2026, 11, 20, 3, tzinfo=UTC)
WH = [2000 + i for i in range(96)]
NEW_METER = "sul-m-9999"  # not in tenants/sul-energia.yaml


def publish(message_id: str, payload: bytes, topic: str = TOPIC) -> None:
    """What the topic rule and the translate function do with one publish."""
    handler = load_handler(TRANSLATE_FUNCTION)
    handler({"Records": [as_sqs_record(message_id, payload, topic)]}, LambdaContext("translate"))


def register_new_meter(settings, model: str = "hx300") -> None:
    meter = Meter(TENANT, NEW_METER, model, "modbus", "rtu-poa-01", "c-9")
    ingest_ports(settings).registry.put_meter(TenantContext(TENANT), meter)


def stored_wh(settings) -> list[int]:
    intervals = ingest_ports(settings).store.load_profile(
        TenantContext(TENANT), NEW_METER, Channel.ACTIVE_IMPORT, DAY, DAY.replace(day=21)
    )
    return [int(r.value * 1000) for r in intervals]


def quarantined(settings, tenant: str | None = TENANT) -> list[QuarantineRecord]:
    return list(ingest_ports(settings).quarantine.list(tenant))


@pytest.fixture
def unknown_meter_key(moto_cloud) -> str:
    """Given a day of intervals from a meter the tenant has not registered yet, quarantined."""
    publish("m-new", hx300_envelope(TENANT, "rtu-poa-01", NEW_METER, DAY, WH).to_json())
    (record,) = quarantined(moto_cloud)
    assert record.reason == "unknown_meter" and record.key
    return record.key


def test_a_message_of_an_unregistered_meter_is_stored_once_the_meter_is_registered(
    moto_cloud, unknown_meter_key
):
    register_new_meter(moto_cloud)
    report = replay(ingest_ports(moto_cloud), TENANT, [unknown_meter_key])
    assert [(r.status, r.previous_reason, r.intervals) for r in report.results] == [
        (ReplayStatus.REPLAYED, "unknown_meter", 4 * 96)  # hx300: A+, A-, R+, R-
    ]
    assert stored_wh(moto_cloud) == WH
    assert quarantined(moto_cloud) == []


def test_replaying_twice_or_after_a_redelivery_does_not_count_twice(moto_cloud, unknown_meter_key):
    register_new_meter(moto_cloud)
    replay(ingest_ports(moto_cloud), TENANT, [unknown_meter_key])
    again = replay(ingest_ports(moto_cloud), TENANT, [unknown_meter_key])
    publish("m-new", hx300_envelope(TENANT, "rtu-poa-01", NEW_METER, DAY, WH).to_json())  # redelivered
    assert [r.status for r in again.results] == [ReplayStatus.NOT_FOUND]
    assert stored_wh(moto_cloud) == WH and sum(stored_wh(moto_cloud)) == sum(WH)


def test_a_record_rejected_again_stays_with_its_new_reason(moto_cloud, unknown_meter_key):
    register_new_meter(moto_cloud, model="mx40")  # registered, but as another model
    publish("m-garbage", b"\x00\xffgarbage")
    report = replay(ingest_ports(moto_cloud), TENANT, ALL)
    assert sorted((r.status, r.reason, r.previous_reason) for r in report.results) == [
        (ReplayStatus.STILL_REJECTED, "malformed_envelope", "malformed_envelope"),
        (ReplayStatus.STILL_REJECTED, "unknown_meter_model", "unknown_meter"),
    ]
    by_id = {r.message_id: r for r in quarantined(moto_cloud)}
    assert by_id["m-new"].reason == "unknown_meter_model" and "mx40" in by_id["m-new"].detail
    assert by_id["m-new"].key == unknown_meter_key and by_id["m-garbage"].original == b"\x00\xffgarbage"
    assert stored_wh(moto_cloud) == []


def test_a_dry_run_reports_the_replay_and_changes_nothing(moto_cloud, unknown_meter_key):
    from hemera import aws

    register_new_meter(moto_cloud)
    s3 = aws.client(moto_cloud.aws, "s3")
    report = replay(ingest_ports(moto_cloud), TENANT, ALL, dry_run=True)
    assert [(r.status, r.intervals) for r in report.results] == [(ReplayStatus.WOULD_REPLAY, 4 * 96)]
    assert stored_wh(moto_cloud) == []
    assert [r.key for r in quarantined(moto_cloud)] == [unknown_meter_key]
    assert s3.list_objects_v2(Bucket=moto_cloud.raw_bucket).get("KeyCount") == 0


def test_a_key_of_another_tenant_is_refused_before_anything_is_replayed(moto_cloud, unknown_meter_key):
    coastal_topic = "hemera/coastal-power/rtu-syd-01/up/telemetry"
    publish(
        "c-1", hx300_envelope("coastal-power", "rtu-syd-01", "cp-m-9999", DAY, WH).to_json(), coastal_topic
    )
    (coastal,) = quarantined(moto_cloud, "coastal-power")
    register_new_meter(moto_cloud)
    with pytest.raises(QuarantineKeyOutsideTenant):
        replay(ingest_ports(moto_cloud), TENANT, [unknown_meter_key, coastal.key])
    assert stored_wh(moto_cloud) == []  # the good key of the command was not replayed either
    assert len(quarantined(moto_cloud)) == 1 and len(quarantined(moto_cloud, "coastal-power")) == 1


def test_unattributed_messages_cannot_be_replayed(moto_cloud):
    record = QuarantineRecord(None, "malformed_envelope", "no topic", None, "u-1", DAY, b"??")
    ingest_ports(moto_cloud).quarantine.put(record)
    with pytest.raises(QuarantineNotReplayable):
        replay(ingest_ports(moto_cloud), None, ALL)
    assert len(quarantined(moto_cloud, None)) == 1


def test_a_transient_error_leaves_the_record_untouched(moto_cloud, unknown_meter_key):
    from hemera import aws

    register_new_meter(moto_cloud)
    # The raw bucket is gone: not the message's fault.
    aws.client(moto_cloud.aws, "s3").delete_bucket(Bucket=moto_cloud.raw_bucket)
    report = replay(ingest_ports(moto_cloud), TENANT, ALL)
    assert [(r.status, r.reason) for r in report.results] == [(ReplayStatus.TRANSIENT_ERROR, "unknown_meter")]
    (record,) = quarantined(moto_cloud)
    assert (record.key, record.reason) == (unknown_meter_key, "unknown_meter")
