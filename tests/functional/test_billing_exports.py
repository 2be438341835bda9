"""Billing exports on moto: the hourly job writes a tenant's due export (files + manifest under the
tenant's prefix, index item, ExportWritten on the bus) exactly once; FinalDaysChanged events that
reach the billing queue through the EventBridge rule are recorded as pending restatements, and the
restatements job turns all of them into ONE new version per export with a diff, while version 1
stays downloadable; on-demand requests that reach the requests queue as ExportRequested become
ready (or failed, with the problem) once, however often SQS delivers them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests

from hemera.adapters.exports_s3 import S3ExportFiles
from hemera.adapters.final_series_events import EventBridgeFinalDays
from hemera.config import RuntimeSettings
from hemera.definitions import (
    BILLING_EXPORTS_FUNCTION,
    EXPORT_REQUESTS_QUEUE,
    EXPORT_RESTATEMENTS_QUEUE,
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
from hemera.ports.exports import Export, ExportState
from hemera.services.access import Caller, Role
from hemera.services.exports import (
    RenderFailed,
    download_url,
    render_requested_export,
    request_export,
    requested_detail,
)
from hemera.wiring import export_ports
from hemera_local.bridge import LambdaContext, cold_start, load_handler, sqs_event
from tests.export_builders import export_written_listener

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
    return export_written_listener(moto_cloud.event_bus, "test-export-written")


def queued_batch(queue_name: str) -> dict[str, Any]:
    """What a billing queue holds (the events its rule forwarded), as Lambda's SQS event source
    hands it over (with the receive count)."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    ):
        messages += batch
    return sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{queue_name}", "us-east-1")


def restatement_batch() -> dict[str, Any]:
    return queued_batch(EXPORT_RESTATEMENTS_QUEUE.local_name)


def request_batch() -> dict[str, Any]:
    return queued_batch(EXPORT_REQUESTS_QUEUE.local_name)


def run_restatements() -> dict[str, Any]:
    """The restatements schedule's event (its payload, as EventBridge's target input gives it)."""
    return invoke({"job": "restatements"})


def announce(changes: list[FinalDayChange]) -> None:
    EventBridgeFinalDays(boto3.client("events"), billing_bus()).announce(CTX, changes)


def edit(
    meter: str, days: tuple[int, ...], value: str, version: int, cause: str = "edit"
) -> list[FinalDayChange]:
    """Store new final versions of some October days of `meter` and return their changes."""
    changed = [final_day(meter, date(2026, 10, d), value, version=version, cause=cause) for d in days]
    # The store the billing function reads (its settings come from the environment, as in Lambda).
    export_ports(RuntimeSettings.from_environ(os.environ)).final_series.save(CTX, changed)  # type: ignore[attr-defined]
    return [
        FinalDayChange(meter, Channel.ACTIVE_IMPORT, d.local_day, version, version - 1, cause)
        for d in changed
    ]


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


def test_changed_days_wait_as_pending_and_the_job_makes_one_new_version_with_a_diff(billing, export_written):
    # Given October's monthly export at version 1
    run_job()
    v1 = billing.index.get(CTX, MONTHLY)
    export_written()
    # When VEE stores an operator's edit of two October days of sul-m-1001 (0.5 kWh instead of
    # 1 kWh per interval) and announces them in two events, and a November day changes too
    changes = edit("sul-m-1001", (5, 6), "0.5", version=2)
    for change in changes:
        announce([change])
    announce([FinalDayChange("sul-m-1002", Channel.ACTIVE_IMPORT, date(2026, 11, 3), 1, None, "ingest")])
    batch = restatement_batch()
    assert len(batch["Records"]) == 3  # the rule forwarded every FinalDaysChanged
    # Then the batch succeeds but no version is made yet: the changes wait for the job
    assert invoke(batch) == {"batchItemFailures": []}
    assert [v.version for v in billing.index.get(CTX, MONTHLY).versions] == [1]
    assert export_written() == []
    pending = billing.restatements.pending(CTX)
    assert sorted(pending) == [
        "20261001-cycle-txt",
        MONTHLY,
    ]  # the cycle export (Group A: October) holds Oct 5-6 too
    assert sorted(c.local_day.day for c in pending[MONTHLY]) == [5, 6]
    # When the restatements job runs
    result = run_restatements()
    # Then October's export has exactly one new version, with the edit as its reason
    assert sorted(result["restated"]) == ["20261001-cycle-txt@v2", f"{MONTHLY}@v2"]
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
    # and ExportWritten announced version 2 of both exports
    assert sorted((d["export_id"], d["version"], d["reason"]) for d in export_written()) == [
        ("20261001-cycle-txt", 2, "edit"),
        (MONTHLY, 2, "edit"),
    ]
    # and version 1 is still downloadable, byte for byte what its manifest says
    caller = Caller(CTX, None, Role.OPERATOR)
    for file in v1.latest.files:
        body = requests.get(download_url(billing, caller, file), timeout=10).content
        assert hashlib.sha256(body).hexdigest() == file.sha256
    assert v2.files[0].key.startswith(f"tenants/{TENANT}/exports/{MONTHLY}/v2/")
    # and nothing is pending any more: the job running again makes no third version
    assert billing.restatements.pending(CTX) == {}
    assert run_restatements()["restated"] == []
    # When the same batch is delivered again (SQS at-least-once) and the job runs
    assert invoke(batch) == {"batchItemFailures": []}
    again = run_restatements()
    # Then no third version is made: the final days did not move
    assert again["restated"] == [] and sorted(again["unchanged"]) == ["20261001-cycle-txt", MONTHLY]
    assert [v.version for v in billing.index.get(CTX, MONTHLY).versions] == [1, 2]
    assert billing.restatements.pending(CTX) == {}


def test_three_change_batches_make_one_version_with_the_union_of_their_reasons(billing, export_written):
    # Given October's monthly export at version 1
    run_job()
    export_written()
    # When three FinalDaysChanged batches land between two runs of the job: late data of
    # sul-m-1002 on the 10th, an edit of sul-m-1003 on the 11th, more late data on the 12th
    for meter, day, value, cause in (
        ("sul-m-1002", 10, "2.5", "late_data"),
        ("sul-m-1003", 11, "1", "edit"),
        ("sul-m-1002", 12, "2.5", "ingest"),
    ):
        announce(edit(meter, (day,), value, version=2, cause=cause))
        assert invoke(restatement_batch()) == {"batchItemFailures": []}
    # and the job runs once
    run_restatements()
    # Then the export has ONE new version, whose reason is the union of the batches' reasons
    export = billing.index.get(CTX, MONTHLY)
    assert [(v.version, v.reason) for v in export.versions] == [(1, "scheduled"), (2, "edit+late_data")]
    # and whose diff covers every meter changed: +0.5 kWh x 96 on two days, -2 kWh x 96 on one
    assert [(d.meter_id, d.old_total, d.new_total, d.intervals_changed) for d in export.latest.diff] == [
        ("sul-m-1002", Decimal(31 * 96 * 2), Decimal(31 * 96 * 2 + 96), 192),
        ("sul-m-1003", Decimal(31 * 96 * 3), Decimal(31 * 96 * 3 - 192), 96),
    ]
    assert [(d["export_id"], d["version"]) for d in export_written() if d["export_id"] == MONTHLY] == [
        (MONTHLY, 2)
    ]


def test_a_change_recorded_while_a_version_renders_stays_pending(billing, monkeypatch):
    # Given October's export at version 1 and an edit of the 5th pending
    run_job()
    announce(edit("sul-m-1001", (5,), "0.5", version=2))
    invoke(restatement_batch())
    # When, while the restatement renders, late data of the 20th is recorded
    from hemera.services import exports as service

    original = service._render

    def render_then_record(*args: Any, **kwargs: Any) -> Any:
        rendered = original(*args, **kwargs)
        formats = kwargs.get("formats", args[3])
        if "txt" not in formats:  # the monthly export's render (not the cycle's TXT of October)
            # VEE stores the 20th and its change is recorded after the files were rendered
            billing.restatements.record(CTX, MONTHLY, edit("sul-m-1001", (20,), "1.5", 2, "late_data"))
        return rendered

    monkeypatch.setattr(service, "_render", render_then_record)
    outcome = service.restate_pending(billing, CTX, datetime.now(UTC))
    monkeypatch.setattr(service, "_render", original)
    assert outcome.failures == ()
    # Then version 2 holds the edit, and the 20th is still pending for the next run
    assert billing.index.get(CTX, MONTHLY).latest.version == 2
    assert [(c.local_day.day, c.cause) for c in billing.restatements.pending(CTX)[MONTHLY]] == [
        (20, "late_data")
    ]
    # When the job runs next, Then version 3 restates the 20th
    run_restatements()
    v3 = billing.index.get(CTX, MONTHLY).latest
    assert (v3.version, v3.reason) == (3, "late_data")
    assert [(d.meter_id, d.intervals_changed) for d in v3.diff] == [("sul-m-1001", 96)]


def test_a_change_outside_every_exported_period_restates_nothing(billing, export_written):
    run_job()
    export_written()
    day = final_day("sul-m-1003", date(2026, 9, 2), "7")
    billing.final_series.save(CTX, [day])
    announce([FinalDayChange("sul-m-1003", Channel.ACTIVE_IMPORT, day.local_day, 1, None, "late_data")])
    assert invoke(restatement_batch()) == {"batchItemFailures": []}
    assert billing.restatements.pending(CTX) == {}
    assert run_restatements()["restated"] == []
    assert [v.version for v in billing.index.get(CTX, MONTHLY).versions] == [1]
    assert export_written() == []


# --- on-demand exports ---------------------------------------------------------------------------
def requested(billing: Any, body: dict[str, Any]) -> Export:
    """An operator's request as the portal accepts it: indexed pending, ExportRequested put."""
    operator = Caller(CTX, None, Role.OPERATOR)
    return request_export(billing, operator, "user:otto.operator", body, datetime(2026, 11, 3, 9, tzinfo=UTC))


def test_a_requested_export_is_rendered_once_into_version_1(billing, export_written):
    # Given an operator's request of October's NEM12 and CSV for two meters (pending)
    pending = requested(
        billing, {"formats": ["nem12", "csv"], "period": "2026-10", "meters": ["sul-m-1002", "sul-m-1001"]}
    )
    assert billing.index.get(CTX, pending.id).state is ExportState.PENDING
    # When the request reaches the billing function through the rule and the requests queue
    batch = request_batch()
    assert len(batch["Records"]) == 1
    assert invoke(batch) == {"batchItemFailures": []}
    # Then the export is ready with version 1 on demand, the files hold the two meters' October
    export = billing.index.get(CTX, pending.id)
    assert (export.state, export.latest_version, export.latest.reason) == (ExportState.READY, 1, "on_demand")
    assert export.meters == ("sul-m-1001", "sul-m-1002") and export.requested_by == "user:otto.operator"
    csv_file = next(f for f in export.latest.files if f.format == "csv")
    assert csv_file.totals["active_import_kWh"] == Decimal(31 * 96 * (1 + 2))
    assert hashlib.sha256(s3_object(csv_file.key)).hexdigest() == csv_file.sha256
    # and ExportWritten announced it once
    assert [(d["export_id"], d["version"], d["reason"]) for d in export_written()] == [
        (pending.id, 1, "on_demand")
    ]
    # When SQS delivers the request again
    assert invoke(batch) == {"batchItemFailures": []}
    # Then it is not rendered twice: same version, same files, no second announcement
    assert billing.index.get(CTX, pending.id).versions == export.versions
    assert export_written() == []


def test_a_request_that_cannot_be_rendered_is_failed_with_the_problem(billing, export_written):
    # Given a pending request of a tenant offboarded before the billing function rendered it
    ghost = TenantContext("ghost-energy")
    pending = Export(
        "ghost-energy", "20261001-od-0badc0de", ("csv",), date(2026, 10, 1), date(2026, 10, 31),
        None, "user:otto.operator", ("g-m-1",), (), ExportState.PENDING, datetime(2026, 11, 3, tzinfo=UTC),
    )  # fmt: skip
    billing.index.create(ghost, pending)
    billing.requests.requested(ghost, requested_detail(pending))
    # When it is delivered
    assert invoke(request_batch()) == {"batchItemFailures": []}
    # Then it is failed, with the problem, and nothing was announced
    failed = billing.index.get(ghost, pending.id)
    assert failed.state is ExportState.FAILED and failed.latest_version is None
    assert failed.failure.startswith("TenantNotFound: ")
    assert export_written() == []


def test_a_transient_error_is_retried_and_the_last_attempt_marks_the_export_failed(billing):
    # Given a pending request and an exports bucket the function cannot write to (it is gone)
    pending = requested(billing, {"format": "csv", "period": "2026-10", "meters": ["sul-m-1001"]})
    broken = dataclasses.replace(billing, files=S3ExportFiles(boto3.client("s3"), "no-such-bucket"))
    # When an attempt that is not the last fails, Then it raises for SQS to deliver it again
    with pytest.raises(RenderFailed):
        render_requested_export(broken, TENANT, pending.id, datetime.now(UTC), last_attempt=False)
    assert billing.index.get(CTX, pending.id).state is ExportState.PENDING
    # When the last attempt fails too, Then the export is failed, not left pending
    failed = render_requested_export(broken, TENANT, pending.id, datetime.now(UTC), last_attempt=True)
    assert failed is not None and failed.state is ExportState.FAILED
    assert billing.index.get(CTX, pending.id).failure == "rendering failed on every attempt (NoSuchBucket)"


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
