"""The VEE function on moto: MeterDaysChanged events reach its queue through the EventBridge rule
the local cloud creates; it validates and estimates the tenant-local days they overlap (a Sydney
DST day of 23 hours), stores them as final days and announces FinalDaysChanged on the bus."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from hemera.adapters.eventbridge import EventBridgeChangeEvents
from hemera.definitions import EVENT_BUS, VEE_FUNCTION, VEE_QUEUE, VEE_SOURCE
from hemera.domain.final_series import FinalDay, FinalStatus, QualityFlag
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.tenancy import TenantContext
from hemera.services.vee import CAUSE_INGEST, DayKey, local_day_span, recompute_days
from hemera.tenants import VeeOverrides
from hemera.wiring import vee_ports, vee_settings_store
from hemera_local.bridge import LambdaContext, load_handler, sqs_event

TENANT, METER = "coastal-power", "cp-m-2001"
CTX = TenantContext(TENANT, correlation_id="functional")
SYDNEY = ZoneInfo("Australia/Sydney")
# Sunday 4 October 2026: Sydney springs forward at 02:00 (AEST +10 → AEDT +11), a 23-hour day.
DST_DAY = date(2026, 10, 4)
GAP_45_MIN = range(20, 23)  # three quarter-hours: 05:00-05:45 AEDT
GAP_6_H = range(40, 64)  # 24 quarter-hours: 10:00-16:00 AEDT
SPIKE = 70
# 90 kWh in a quarter-hour is 360 kW: over three times its neighbours' ~110 kW (a spike), but
# under the meter's demand limit (350 kW contracted + 5 %), so only the spike rule fails it.
SPIKE_KWH = Decimal(90)


def value_at(n: int) -> Decimal:
    """A ramp: each quarter-hour 0.25 kWh more than the one before (1 kW steps of demand)."""
    return Decimal(10) + Decimal(n) / 4


def day_readings(day: date, skip: range | set[int] = frozenset(), **values: Decimal) -> list[IntervalReading]:
    start, end = local_day_span(day, SYDNEY)
    readings, n = [], 0
    while start + timedelta(minutes=15 * n) < end:
        if n not in skip:
            value = values.get(f"at_{n}", value_at(n))
            readings.append(
                IntervalReading(
                    METER,
                    Channel.ACTIVE_IMPORT,
                    start + timedelta(minutes=15 * n),
                    15,
                    value,
                    Unit.KWH,
                    raw_value=n,
                )
            )
        n += 1
    return readings


def ports(settings: Any):
    return vee_ports(settings)


def store_and_announce(settings: Any, readings: list[IntervalReading]) -> None:
    """What ingest does: announce each changed UTC day on the bus, then write it."""
    events = EventBridgeChangeEvents(boto3.client("events"), settings.event_bus, EVENT_BUS.source)
    ports(settings).readings.merge_intervals(CTX, readings, lambda changes: events.announce(CTX, changes))


def delivered(queue_name: str = VEE_QUEUE.local_name) -> dict[str, Any]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    return sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{queue_name}", "us-east-1")


def invoke_vee(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(VEE_FUNCTION)(event, LambdaContext(VEE_FUNCTION.name))


@pytest.fixture
def final_days_events(moto_cloud):
    """A queue that receives every FinalDaysChanged event put on the platform bus."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="final-days-listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="final-days-listener",
        EventBusName=moto_cloud.event_bus,
        EventPattern=json.dumps({"source": [VEE_SOURCE], "detail-type": ["FinalDaysChanged"]}),
    )
    events.put_targets(
        Rule="final-days-listener", EventBusName=moto_cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}]
    )

    def received() -> list[dict[str, Any]]:
        return [json.loads(r["body"])["detail"] for r in delivered("final-days-listener")["Records"]]

    return received


@pytest.fixture
def history(moto_cloud):
    """Four weeks of complete days before the DST day, already validated (final version 1)."""
    vee = ports(moto_cloud)
    days = [DST_DAY - timedelta(days=n) for n in range(28, 0, -1)]
    for day in days:
        vee.readings.merge_intervals(CTX, day_readings(day))
    tenant = vee.registry.get_tenant(CTX)
    assert tenant is not None
    keys = [DayKey(METER, Channel.ACTIVE_IMPORT, d) for d in days]
    stored, failed = recompute_days(vee, CTX, tenant, keys, CAUSE_INGEST, datetime(2026, 10, 6, tzinfo=UTC))
    assert failed == {} and len(stored) == len(days)
    return days


def final_day(settings: Any, day: date = DST_DAY) -> FinalDay:
    (found,) = ports(settings).final.final_days(CTX, METER, Channel.ACTIVE_IMPORT, day, day)
    return found


def test_a_dst_day_with_gaps_and_a_spike_becomes_a_final_day_with_its_estimates(
    moto_cloud, history, final_days_events
):
    # Given the DST day arrives with a 45-minute gap, a 6-hour gap and a spike, announced by ingest
    final_days_events()  # (the history's announcements are not what this test looks at)
    store_and_announce(
        moto_cloud, day_readings(DST_DAY, skip={*GAP_45_MIN, *GAP_6_H}, **{f"at_{SPIKE}": SPIKE_KWH})
    )

    # When the VEE function runs on what the rule delivered
    event = delivered()
    response = invoke_vee(event)

    # Then the local day (23 hours: 92 quarter-hours) is stored with every interval accounted for
    assert response == {"batchItemFailures": []}
    day = final_day(moto_cloud)
    assert (day.version, day.cause, len(day.intervals)) == (1, "ingest", 92)
    by_index = dict(enumerate(day.intervals))
    # the 45-minute gap is interpolated linearly (AEMO method 17) onto the ramp
    assert [(by_index[n].value, by_index[n].method_flag) for n in GAP_45_MIN] == [
        (value_at(n), 17) for n in GAP_45_MIN
    ]
    # the 6-hour gap is estimated from like days (14 like day or 15 average like day)
    assert {by_index[n].method_flag for n in GAP_6_H} <= {14, 15}
    assert all(by_index[n].quality_flag is QualityFlag.SUBSTITUTE for n in GAP_6_H)
    assert all(by_index[n].value is not None and by_index[n].raw_value is None for n in GAP_6_H)
    # the spike failed validation and was substituted, its raw value kept
    spike = by_index[SPIKE]
    assert spike.status is FinalStatus.ESTIMATED and spike.raw_value == SPIKE_KWH
    assert spike.value == value_at(SPIKE) and spike.method_flag == 17
    # the actual intervals are the meter's
    assert by_index[0].status is FinalStatus.ACTUAL and by_index[0].value == value_at(0)

    # And listeners hear of the new version, with the failed rules and the estimates counted
    (announced,) = final_days_events()
    assert announced["tenant"] == TENANT
    days = {d["local_day"]: d for d in announced["days"]}
    assert days["2026-10-04"]["version"] == 1 and days["2026-10-04"]["previous_version"] is None
    assert days["2026-10-04"]["estimated"] == len(GAP_45_MIN) + len(GAP_6_H) + 1
    assert "spike" in days["2026-10-04"]["failed_rules"]


def test_a_tenants_stored_vee_overrides_change_how_its_days_are_estimated(moto_cloud, history):
    # Given Coastal Power's tenant file now allows linear interpolation over 30 minutes only, as
    # onboarding stores it (no redeploy: the function reads it at run time)
    overrides = VeeOverrides(linear_max_gap_minutes=30)
    vee_settings_store(moto_cloud).put_overrides(CTX, overrides)
    assert vee_settings_store(moto_cloud).overrides(CTX) == overrides

    # When the DST day arrives with its 45-minute gap and the VEE function runs
    store_and_announce(moto_cloud, day_readings(DST_DAY, skip=set(GAP_45_MIN)))
    assert invoke_vee(delivered()) == {"batchItemFailures": []}

    # Then the gap is not interpolated (method 17) but estimated from like days
    by_index = dict(enumerate(final_day(moto_cloud).intervals))
    assert {by_index[n].method_flag for n in GAP_45_MIN} <= {14, 15}


def test_late_real_data_replaces_the_estimates_in_a_new_version(moto_cloud, history, final_days_events):
    # Given the DST day was validated with its 6-hour gap estimated
    store_and_announce(moto_cloud, day_readings(DST_DAY, skip=GAP_6_H))
    invoke_vee(delivered())
    estimated = final_day(moto_cloud)
    final_days_events()

    # When the gap's real data arrives late and VEE runs on the announcement
    store_and_announce(moto_cloud, [r for r in day_readings(DST_DAY) if r.raw_value in GAP_6_H])
    response = invoke_vee(delivered())

    # Then version 2 holds the meter's values (cause late_data), and version 1 is still there
    assert response == {"batchItemFailures": []}
    day = final_day(moto_cloud)
    assert (day.version, day.cause) == (2, "late_data")
    assert [day.intervals[n].value for n in GAP_6_H] == [value_at(n) for n in GAP_6_H]
    assert {day.intervals[n].status for n in GAP_6_H} == {FinalStatus.ACTUAL}
    first = ports(moto_cloud).final.final_day_version(CTX, METER, Channel.ACTIVE_IMPORT, DST_DAY, 1)
    assert first == estimated
    (announced,) = final_days_events()
    assert [(d["version"], d["previous_version"], d["cause"]) for d in announced["days"]] == [
        (2, 1, "late_data")
    ]


def test_the_same_announcement_delivered_twice_stores_no_second_version(moto_cloud, history):
    store_and_announce(moto_cloud, day_readings(DST_DAY, skip=GAP_45_MIN))
    event = delivered()
    invoke_vee(event)
    assert invoke_vee(event) == {"batchItemFailures": []}
    assert final_day(moto_cloud).version == 1


def test_a_record_whose_day_has_not_landed_fails_alone_and_a_malformed_one_too(moto_cloud, history):
    # Given one good announcement, one of a version not stored yet and one that is not an event
    store_and_announce(moto_cloud, day_readings(DST_DAY))
    good = delivered()["Records"][0]
    early = json.loads(good["body"])
    early["detail"]["changes"][0]["version"] = 99
    bad = {**good, "messageId": "not-an-event", "body": "{}"}
    early_record = {**good, "messageId": "early", "body": json.dumps(early)}

    # When the function gets the three in one batch
    response = invoke_vee({"Records": [good, early_record, bad]})

    # Then only the early and the malformed records are handed back for another delivery
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["early", "not-an-event"]
    assert final_day(moto_cloud).version == 1


def test_the_nightly_sweep_estimates_yesterday_of_a_meter_that_went_silent(moto_cloud):
    # Given a meter delivered the day before yesterday (its local time) and nothing yesterday
    now = datetime.now(UTC)
    yesterday = now.astimezone(SYDNEY).date() - timedelta(days=1)
    ports(moto_cloud).readings.merge_intervals(CTX, day_readings(yesterday - timedelta(days=1)))

    # When the nightly schedule fires
    result = invoke_vee({"job": "vee_sweep"})

    # Then yesterday is a final day of the sweep, each interval accounted for
    assert result["truncated"] is False and result["days_stored"] >= 1
    day = final_day(moto_cloud, yesterday)
    assert day.cause == "sweep"
    assert len(day.intervals) == len(day_readings(yesterday))
    assert {i.status for i in day.intervals} <= {FinalStatus.ESTIMATED, FinalStatus.FAILED}
