"""Billing exports on moto: the hourly job writes a tenant's due export (files + manifest under the
tenant's prefix, index item, ExportWritten on the bus) exactly once; FinalDaysChanged events that
reach the billing queue through the EventBridge rule restate the exported period as version 2
with a diff, coalesced per batch, while version 1 stays downloadable."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests

from hemera.adapters.final_series_events import EventBridgeFinalDays
from hemera.definitions import (
    BILLING_EXPORTS_FUNCTION,
    BILLING_SOURCE,
    EXPORT_RESTATEMENTS_QUEUE,
    EXPORT_WRITTEN,
    EXPORTS_BUCKET,
)
from hemera.domain.final_series import (
    ESPI_EDITED,
    ESPI_VALIDATED,
    FinalDay,
    FinalDayChange,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.access import Caller, Role
from hemera.services.exports import download_url
from hemera.wiring import export_ports
from hemera_local.bridge import LambdaContext, cold_start, load_handler, sqs_event

TENANT = "sul-energia"
CTX = TenantContext(TENANT)
ZONE = ZoneInfo("America/Sao_Paulo")
METERS = ("sul-m-1001", "sul-m-1002", "sul-m-1003")
OCTOBER = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]
# Sul Energia's monthly schedule runs on the 2nd at 02:00 local: this is after it.
AS_OF = datetime(2026, 11, 2, 6, 0, tzinfo=ZONE)
MONTHLY = "20261001-monthly-csv"


def final_day(meter: str, day: date, value: str, version: int = 1, cause: str = "ingest") -> FinalDay:
    """Every 15-minute interval of one local day at `value` kWh (an edited day when cause=edit)."""
    start = datetime.combine(day, time(0), tzinfo=ZONE).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZONE).astimezone(UTC)
    edited = cause == "edit"
    intervals = tuple(
        FinalInterval(
            start=start + timedelta(minutes=15 * n),
            length_minutes=15,
            value=Decimal(value),
            raw_value=Decimal(value),
            status=FinalStatus.EDITED if edited else FinalStatus.ACTUAL,
            quality_flag=QualityFlag.SUBSTITUTE if edited else QualityFlag.ACTUAL,
            espi_quality=ESPI_EDITED if edited else ESPI_VALIDATED,
        )
        for n in range(int((end - start) / timedelta(minutes=15)))
    )
    return FinalDay(
        meter_id=meter,
        channel=Channel.ACTIVE_IMPORT,
        local_day=day,
        timezone=ZONE.key,
        interval_minutes=15,
        version=version,
        intervals=intervals,
        computed_at=datetime(2026, 11, 1, tzinfo=UTC),
        cause=cause,
    )


@pytest.fixture
def billing(moto_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The demo tenants (their schedules stored at onboarding by the cloud fixture), and October's
    final days of Sul Energia's meters (1 kWh per interval for sul-m-1001, 2 and 3 kWh for the
    others)."""
    cold_start()
    ports = export_ports(moto_cloud)
    store = ports.final_series
    for index, meter in enumerate(METERS, start=1):
        store.save(CTX, [final_day(meter, day, str(index)) for day in OCTOBER])  # type: ignore[attr-defined]
    return ports


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(BILLING_EXPORTS_FUNCTION)(event, LambdaContext(BILLING_EXPORTS_FUNCTION.name))


def run_job(as_of: datetime = AS_OF) -> dict[str, Any]:
    """The schedule's event as EventBridge's target input gives it in AWS: the payload alone."""
    return invoke({"job": "exports_due", "as_of": as_of.isoformat()})


@pytest.fixture
def export_written(moto_cloud: Any) -> Any:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="test-export-written")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [BILLING_SOURCE], "detail-type": [EXPORT_WRITTEN]}
    events.put_rule(
        Name="test-export-written", EventBusName=moto_cloud.event_bus, EventPattern=json.dumps(pattern)
    )
    events.put_targets(
        Rule="test-export-written", EventBusName=moto_cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}]
    )

    def received() -> list[dict[str, Any]]:
        found = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return received


def restatement_batch() -> dict[str, Any]:
    """What the billing queue holds (FinalDaysChanged forwarded by the rule), as Lambda's SQS
    event source hands it over."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=EXPORT_RESTATEMENTS_QUEUE.local_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
    arn = f"arn:aws:sqs:us-east-1:123456789012:{EXPORT_RESTATEMENTS_QUEUE.local_name}"
    return sqs_event(messages, arn, "us-east-1")


def s3_object(key: str) -> bytes:
    body: bytes = boto3.client("s3").get_object(Bucket=EXPORTS_BUCKET.local_name, Key=key)["Body"].read()
    return body


def test_a_due_schedule_writes_files_manifest_index_and_event_once(billing, export_written):
    # Given October's final data of Sul Energia and its monthly schedule (csv + regulatory xml)
    # When the hourly job runs after the schedule's run time
    result = run_job()
    # Then October's monthly export is written (with the other due schedules of both tenants)
    assert MONTHLY in result["written"]
    export = billing.index.get(CTX, MONTHLY)
    assert (export.period_start, export.period_end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert export.formats == ("csv", "regulatory_xml") and export.meters == METERS
    # and its manifest lists the files with the sha256 of the objects in S3, under the tenant
    manifest = json.loads(s3_object(export.latest.manifest_key))
    assert export.latest.manifest_key == f"tenants/{TENANT}/exports/{MONTHLY}/v1/manifest.json"
    assert manifest["version"] == 1 and manifest["period"]["start"] == "2026-10-01"
    assert {f["format"] for f in manifest["files"]} == {"csv", "regulatory_xml"}
    for file in manifest["files"]:
        assert file["key"].startswith(f"tenants/{TENANT}/exports/{MONTHLY}/v1/")
        assert hashlib.sha256(s3_object(file["key"])).hexdigest() == file["sha256"]
        assert file["rows"] > 0
    # and the totals are October's energy: 31 days x 96 intervals x 1, 2 and 3 kWh
    totals = {(t["meter_id"], t["channel"]): Decimal(t["total"]) for t in manifest["totals"]}
    assert totals == {
        (meter, "active_import"): Decimal(31 * 96 * n) for n, meter in enumerate(METERS, start=1)
    }
    csv_file = next(f for f in manifest["files"] if f["format"] == "csv")
    assert Decimal(csv_file["totals"]["active_import_kWh"]) == Decimal(31 * 96 * 6)
    # and ExportWritten went to the bus for it
    details = [d for d in export_written() if d["export_id"] == MONTHLY]
    assert [(d["tenant"], d["version"], d["reason"]) for d in details] == [(TENANT, 1, "scheduled")]
    # When the job runs again (the next hour, or a retried invocation)
    again = run_job(AS_OF + timedelta(hours=1))
    # Then nothing is written twice
    assert MONTHLY in again["already_done"] and again["written"] == []
    assert [d for d in export_written() if d["export_id"] == MONTHLY] == []


def test_the_local_schedulers_event_shape_runs_the_job_too(billing):
    # Given the local scheduler's event: the whole scheduled event, the payload as its detail
    event = {
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": AS_OF.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"job": "exports_due"},
    }
    # When it is delivered, Then the export of the period due at that time is written
    assert MONTHLY in invoke(event)["written"]


def test_changed_days_inside_an_exported_period_make_one_new_version_with_a_diff(billing, export_written):
    # Given October's monthly export at version 1
    run_job()
    v1 = billing.index.get(CTX, MONTHLY)
    export_written()
    # When VEE stores an operator's edit of two October days of sul-m-1001 (0.5 kWh instead of
    # 1 kWh per interval) and announces them in two events, and a November day changes too
    edits = [final_day("sul-m-1001", date(2026, 10, d), "0.5", version=2, cause="edit") for d in (5, 6)]
    billing.final_series.save(CTX, edits)
    announcer = EventBridgeFinalDays(boto3.client("events"), billing_bus())
    for day in edits:
        announcer.announce(
            CTX, [FinalDayChange("sul-m-1001", Channel.ACTIVE_IMPORT, day.local_day, 2, 1, "edit")]
        )
    announcer.announce(
        CTX, [FinalDayChange("sul-m-1002", Channel.ACTIVE_IMPORT, date(2026, 11, 3), 1, None, "ingest")]
    )
    batch = restatement_batch()
    assert len(batch["Records"]) == 3  # the rule forwarded every FinalDaysChanged
    result = invoke(batch)
    # Then the batch succeeds and October's export has exactly one new version (coalesced)
    assert result == {"batchItemFailures": []}
    export = billing.index.get(CTX, MONTHLY)
    assert [v.version for v in export.versions] == [1, 2]
    v2 = export.latest
    assert v2.reason == "edit"
    # with the diff of the edited meter: 2 days x 96 intervals changed, 96 kWh less
    assert [(d.meter_id, d.channel, d.old_total, d.new_total, d.intervals_changed) for d in v2.diff] == [
        ("sul-m-1001", "active_import", Decimal(2976), Decimal(2976 - 96), 192)
    ]
    manifest = json.loads(s3_object(v2.manifest_key))
    assert manifest["previous_version"] == 1 and manifest["diff"][0]["new_total"] == "2880.0"
    # and ExportWritten announced version 2, and version 2 of the billing cycle (Sep 15 - Oct 14)
    # of sul-m-1001's customer, which holds the 5th and 6th too
    assert sorted((d["export_id"], d["version"], d["reason"]) for d in export_written()) == [
        ("20260915-cycle-txt", 2, "edit"),
        (MONTHLY, 2, "edit"),
    ]
    # and version 1 is still downloadable, byte for byte what its manifest says
    caller = Caller(CTX, None, Role.OPERATOR)
    for file in v1.latest.files:
        body = requests.get(download_url(billing, caller, file), timeout=10).content
        assert hashlib.sha256(body).hexdigest() == file.sha256
    assert v2.files[0].key.startswith(f"tenants/{TENANT}/exports/{MONTHLY}/v2/")
    # When the same batch is delivered again (SQS at-least-once)
    assert invoke(batch) == {"batchItemFailures": []}
    # Then no third version is made: the final days did not move
    assert [v.version for v in billing.index.get(CTX, MONTHLY).versions] == [1, 2]


def test_a_change_outside_every_exported_period_restates_nothing(billing, export_written):
    run_job()
    export_written()
    day = final_day("sul-m-1003", date(2026, 9, 2), "7")
    billing.final_series.save(CTX, [day])
    EventBridgeFinalDays(boto3.client("events"), billing_bus()).announce(
        CTX, [FinalDayChange("sul-m-1003", Channel.ACTIVE_IMPORT, day.local_day, 1, None, "late_data")]
    )
    assert invoke(restatement_batch()) == {"batchItemFailures": []}
    assert [v.version for v in billing.index.get(CTX, MONTHLY).versions] == [1]
    assert export_written() == []


def test_a_malformed_event_fails_alone(billing):
    batch = restatement_batch()
    batch["Records"] = [
        {**record, "messageId": "bad", "body": json.dumps({"source": "x", "detail-type": "y", "detail": {}})}
        for record in [{"attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}]
    ]
    assert invoke(batch) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def billing_bus() -> str:
    from hemera.definitions import EVENT_BUS

    return EVENT_BUS.local_name
