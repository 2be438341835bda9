"""Billing exports rendered in parts, on moto: a version larger than one invocation renders is
split into parts (here: parts of one meter, by asking for parts of 2 meter-days on a 2-day
period), one `ExportRequested` message per part goes through the rule to the requests queue,
each part's files are complete files of their format (read back by the independent readers:
nemreader, greenbutton-objects, the XSD, a CSV reader), the manifest lists every file and sums
the totals over the parts, and `ExportWritten` is announced once — also when the last two parts
complete at the same time or a part is delivered again. A part that fails its last attempt fails
the export; a restatement of a multi-part export makes a complete new version in parts."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import xmlschema
from greenbutton_objects import parse
from nemreader import NEMFile

from hemera.definitions import (
    BILLING_EXPORTS_FUNCTION,
    EXPORT_REQUESTS_QUEUE,
    EXPORTS_BUCKET,
)
from hemera.domain.exports.csv_txt import CSV_COLUMNS
from hemera.domain.final_series import (
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
    ExportPorts,
    get_export,
    record_restatements,
    render_export_part,
    render_requested_export,
    request_export,
    restate_pending,
)
from hemera.wiring import export_ports
from hemera_local.bridge import LambdaContext, cold_start, load_handler, sqs_event
from tests.export_builders import export_written_listener

TENANT = "coastal-power"
CTX = TenantContext(TENANT)
ZONE = ZoneInfo("Australia/Sydney")
DAYS = (date(2026, 10, 1), date(2026, 10, 2))  # AEST: 96 quarter-hours each
METERS = {"cp-m-2001": "NCCC000101", "cp-m-2002": "NCCC000102", "cp-m-2003": "NCCC000103"}
FORMATS = ["csv", "txt", "nem12", "green_button", "regulatory_xml"]
XSD = Path(__file__).parents[2] / "layers" / "hemera" / "domain" / "exports" / "regulatory_hourly.xsd"
REQUESTED_AT = datetime(2026, 10, 3, 9, tzinfo=UTC)
OPERATOR = Caller(CTX, None, Role.OPERATOR)


def final_day(
    meter: str, day: date, kwh: str, version: int = 1, cause: str = "ingest", minutes: int = 15
) -> FinalDay:
    start = datetime.combine(day, time(0), tzinfo=ZONE).astimezone(UTC)
    intervals = tuple(
        FinalInterval(
            start=start + timedelta(minutes=minutes * n),
            length_minutes=minutes,
            value=Decimal(kwh),
            raw_value=Decimal(kwh),
            status=FinalStatus.ACTUAL,
            quality_flag=QualityFlag.ACTUAL,
            espi_quality=ESPI_VALIDATED,
        )
        for n in range(24 * 60 // minutes)
    )
    return FinalDay(
        meter_id=meter,
        channel=Channel.ACTIVE_IMPORT,
        local_day=day,
        timezone=ZONE.key,
        interval_minutes=minutes,
        version=version,
        intervals=intervals,
        computed_at=datetime(2026, 10, 2, 15, tzinfo=UTC),
        cause=cause,
    )


@pytest.fixture
def coastal(moto_cloud: Any) -> ExportPorts:
    """Coastal Power's three meters (NMIs from its tenant file) with 1, 2 and 3 kWh a
    quarter-hour on 1 and 2 October; the export ports as the billing function builds them, but
    with parts of at most 2 meter-days (one meter of the 2-day period a part)."""
    cold_start()
    ports = export_ports(moto_cloud)
    for kwh, meter in enumerate(METERS, start=1):
        ports.final_series.save(CTX, [final_day(meter, d, str(kwh)) for d in DAYS])  # type: ignore[attr-defined]
    return dataclasses.replace(ports, part_meter_days=2)


@pytest.fixture
def export_written(moto_cloud: Any) -> Any:
    return export_written_listener(moto_cloud.event_bus, "test-parts-written")


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(BILLING_EXPORTS_FUNCTION)(event, LambdaContext(BILLING_EXPORTS_FUNCTION.name))


def queued(queue_name: str = EXPORT_REQUESTS_QUEUE.local_name) -> list[dict[str, Any]]:
    """The messages a queue holds, each as the one-record batch Lambda hands over (the requests
    queue's batch size is 1), with the detail it carries."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    ):
        messages += batch
    arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_name}"
    return [sqs_event([m], arn, "us-east-1") for m in messages]


def detail_of(batch: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(batch["Records"][0]["body"])["detail"]
    return detail


def by_part(batches: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {detail_of(b)["part"]: b for b in batches}


def s3_object(key: str) -> bytes:
    body: bytes = boto3.client("s3").get_object(Bucket=EXPORTS_BUCKET.local_name, Key=key)["Body"].read()
    return body


def requested(ports: ExportPorts) -> Export:
    """An operator's on-demand request of both days in every format, started by the billing
    function: it queues the parts (the request message itself is taken off the queue)."""
    body = {"formats": FORMATS, "from": "2026-10-01", "to": "2026-10-03"}
    export = request_export(ports, OPERATOR, "user:otto.operator", body, REQUESTED_AT)
    (request,) = queued()
    assert detail_of(request) == {"tenant": TENANT, "export_id": export.id}
    started = render_requested_export(ports, TENANT, export.id, REQUESTED_AT)
    assert started is not None and started.rendering is not None
    return started


def test_an_export_of_three_parts_is_rendered_part_by_part_and_announced_once(
    coastal, export_written, tmp_path
):
    # Given an on-demand export of three meters x two days, with parts of two meter-days
    export = requested(coastal)
    # Then it is pending in three parts of one meter, and one message per part is queued
    assert (export.state, export.rendering.parts, export.rendering.meters_per_part) == (
        ExportState.PENDING,
        3,
        1,
    )
    parts = by_part(queued())
    assert sorted(parts) == [1, 2, 3]
    assert {detail_of(b)["version"] for b in parts.values()} == {1}
    # When the billing function takes parts 1 and 3 off the queue
    for part in (1, 3):
        assert invoke(parts[part]) == {"batchItemFailures": []}
    # Then the export is still pending and nothing is announced
    assert coastal.index.get(CTX, export.id).state is ExportState.PENDING
    assert export_written() == []
    # When part 1 is delivered again (SQS at-least-once), Then it is skipped
    assert invoke(parts[1]) == {"batchItemFailures": []}
    assert coastal.index.get(CTX, export.id).rendering.parts_done == frozenset({1, 3})
    # When the last part is rendered
    assert invoke(parts[2]) == {"batchItemFailures": []}
    # Then version 1 is ready, its manifest listing the five files of each part
    ready = coastal.index.get(CTX, export.id)
    assert (ready.state, ready.latest_version, ready.rendering) == (ExportState.READY, 1, None)
    manifest = json.loads(s3_object(ready.latest.manifest_key))
    assert manifest["parts"] == 3
    assert sorted((f["part"], f["format"]) for f in manifest["files"]) == sorted(
        (p, f) for p in (1, 2, 3) for f in FORMATS
    )
    for file in manifest["files"]:
        assert hashlib.sha256(s3_object(file["key"])).hexdigest() == file["sha256"]
    # and its totals are the sum over the parts: 2 days x 96 quarter-hours x 1, 2 and 3 kWh
    totals = {t["meter_id"]: Decimal(t["total"]) for t in manifest["totals"]}
    assert totals == {meter: Decimal(2 * 96 * kwh) for kwh, meter in enumerate(METERS, start=1)}
    for name in FORMATS:
        files = [f for f in manifest["files"] if f["format"] == name]
        assert sum(Decimal(f["totals"]["active_import_kWh"]) for f in files) == Decimal(2 * 96 * 6)
    # and each part's files are read by the independent readers, each holding its own meter
    schema = xmlschema.XMLSchema(str(XSD))
    for part, (meter, nmi) in enumerate(METERS.items(), start=1):
        files = {f["format"]: f for f in manifest["files"] if f["part"] == part}
        nem12 = tmp_path / files["nem12"]["name"].replace("#", "_")
        nem12.write_bytes(s3_object(files["nem12"]["key"]))
        readings = NEMFile(str(nem12), strict=True).nem_data().readings
        assert list(readings) == [nmi]
        assert sum(r.read_value for r in readings[nmi]["E1"]) == pytest.approx(2 * 96 * part)
        feed = tmp_path / files["green_button"]["name"]
        feed.write_bytes(s3_object(files["green_button"]["key"]))
        (point,) = parse.parse_feed(str(feed))
        (reading,) = point.meterReadings
        assert point.title == meter and len(list(reading.intervalReadings)) == 2 * 96
        schema.validate(s3_object(files["regulatory_xml"]["key"]).decode())
        rows = list(csv.reader(io.StringIO(s3_object(files["csv"]["key"]).decode())))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + 2 * 96
    # and ExportWritten announced it once, listing every file
    assert [(d["export_id"], d["version"], d["file_count"]) for d in export_written()] == [(export.id, 1, 15)]
    # and the portal's view of the export lists every file (the index leaves them to the
    # manifest: thousands of files would not fit a DynamoDB item)
    assert ready.latest.files == () and ready.latest.parts == 3
    shown = get_export(coastal, OPERATOR, export.id)
    assert sorted(f.key for f in shown.latest.files) == sorted(f["key"] for f in manifest["files"])
    # When the last part is delivered again, Then nothing is announced twice
    assert invoke(parts[2]) == {"batchItemFailures": []}
    assert export_written() == []
    assert coastal.index.get(CTX, export.id).versions == ready.versions


class LastTwoAtOnce:
    """The index of the billing function, with part 3's whole delivery slipped in between part
    2's rendering and its recording: both rendered after seeing part 1 recorded only."""

    def __init__(self, ports: ExportPorts, export_id: str) -> None:
        self._index, self._ports, self._export_id, self.outcomes = ports.index, ports, export_id, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def record_part(self, ctx: TenantContext, export_id: str, version: int, part: int) -> int:
        if part == 2:
            self.outcomes.append(render_export_part(self._ports, TENANT, self._export_id, 1, 3, REQUESTED_AT))
        return self._index.record_part(ctx, export_id, version, part)


def test_the_last_two_parts_completing_together_announce_the_export_once(coastal, export_written):
    # Given an export in three parts whose part 1 is recorded
    export = requested(coastal)
    parts = by_part(queued())
    invoke(parts[1])
    # When parts 2 and 3 complete at the same time (each rendered before the other recorded)
    racing = LastTwoAtOnce(coastal, export.id)
    second = render_export_part(
        dataclasses.replace(coastal, index=racing), TENANT, export.id, 1, 2, REQUESTED_AT
    )
    # Then exactly one of them finished the version (the one whose recording came last)
    (third,) = racing.outcomes
    assert (third.state, third.rendering.parts_done) == (ExportState.PENDING, frozenset({1, 3}))
    assert second is not None and second.state is ExportState.READY
    # and the export is ready with every part's files, announced once
    ready = get_export(coastal, OPERATOR, export.id)
    assert ready.state is ExportState.READY and {f.part for f in ready.latest.files} == {1, 2, 3}
    assert [(d["export_id"], d["version"]) for d in export_written()] == [(export.id, 1)]


class NoManifests:
    """The export files, except that a manifest cannot be written."""

    def __init__(self, files: Any) -> None:
        self._files = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self._files, name)

    def put(self, ctx: TenantContext, key: str, content: bytes, content_type: str) -> None:
        if key.endswith("/manifest.json"):
            raise OSError("S3 is unavailable")
        self._files.put(ctx, key, content, content_type)


def test_a_finisher_that_stopped_is_replaced_by_the_redelivery_of_its_part(coastal, export_written):
    # Given an export in three parts whose parts 1 and 2 are recorded
    export = requested(coastal)
    parts = by_part(queued())
    invoke(parts[1])
    invoke(parts[2])
    # When the delivery of part 3 records it but stops before finishing (the manifest's put fails)
    broken = dataclasses.replace(coastal, files=NoManifests(coastal.files))
    with pytest.raises(OSError):
        render_export_part(broken, TENANT, export.id, 1, 3, REQUESTED_AT)
    assert coastal.index.get(CTX, export.id).rendering.complete
    assert export_written() == []
    # When SQS delivers part 3 again, Then that delivery finishes the version and announces it
    assert invoke(parts[3]) == {"batchItemFailures": []}
    assert coastal.index.get(CTX, export.id).state is ExportState.READY
    assert [(d["export_id"], d["version"]) for d in export_written()] == [(export.id, 1)]


def test_a_part_failing_its_last_attempt_fails_the_export(coastal, export_written):
    # Given an export in three parts, part 1 recorded, and a day of cp-m-2002 stored again in
    # hourly intervals, which NEM12 cannot carry (a problem of the data: no attempt renders it)
    export = requested(coastal)
    parts = by_part(queued())
    invoke(parts[1])
    hourly = final_day("cp-m-2002", DAYS[0], "8", version=2, minutes=60)
    coastal.final_series.save(CTX, [hourly])  # type: ignore[attr-defined]
    # When part 2 is delivered
    assert invoke(parts[2]) == {"batchItemFailures": []}
    # Then the export is failed with the part and the problem, and nothing is announced
    failed = coastal.index.get(CTX, export.id)
    assert (failed.state, failed.latest_version, failed.rendering) == (ExportState.FAILED, None, None)
    assert failed.failure.startswith("part 2: ExportNotRenderable: meter cp-m-2002")
    # and part 3 arriving afterwards does nothing
    assert invoke(parts[3]) == {"batchItemFailures": []}
    assert coastal.index.get(CTX, export.id) == failed
    assert export_written() == []


def test_a_restatement_of_a_multi_part_export_is_a_complete_new_version(coastal, export_written):
    # Given a ready export in three parts
    export = requested(coastal)
    for batch in queued():
        invoke(batch)
    v1 = get_export(coastal, OPERATOR, export.id)
    export_written()
    # When an edit of cp-m-2002 on 2 October (0.5 kWh a quarter-hour) is recorded as pending
    coastal.final_series.save(CTX, [final_day("cp-m-2002", DAYS[1], "0.5", version=2, cause="edit")])  # type: ignore[attr-defined]
    change = FinalDayChange("cp-m-2002", Channel.ACTIVE_IMPORT, DAYS[1], 2, 1, "edit")
    assert record_restatements(coastal, TENANT, [change]) == {export.id: 1}
    # and the restatements job runs: version 2 is started in three parts, its changes kept pending
    outcome = restate_pending(coastal, CTX, REQUESTED_AT)
    assert [(e.id, e.rendering.version, e.rendering.parts) for e in outcome.rendering] == [(export.id, 2, 3)]
    assert coastal.restatements.pending(CTX) == {export.id: (change,)}
    # and running it again meanwhile starts nothing more
    assert restate_pending(coastal, CTX, REQUESTED_AT).rendering == ()
    # When the parts are delivered
    parts = queued()
    assert sorted(detail_of(b)["part"] for b in parts) == [1, 2, 3]
    for batch in parts:
        assert invoke(batch) == {"batchItemFailures": []}
    # Then version 2 is complete: every part's files, the edit as reason, the diff of cp-m-2002
    restated = get_export(coastal, OPERATOR, export.id)
    assert [v.version for v in restated.versions] == [1, 2] and restated.rendering is None
    v2 = restated.latest
    assert v2.reason == "edit" and len(v2.files) == 15
    assert [(d.meter_id, d.old_total, d.new_total, d.intervals_changed) for d in v2.diff] == [
        ("cp-m-2002", Decimal(2 * 96 * 2), Decimal(96 * 2 + 48), 96)
    ]
    manifest = json.loads(s3_object(v2.manifest_key))
    assert manifest["previous_version"] == 1 and {f["key"].split("/")[-2] for f in manifest["files"]} == {
        "v2"
    }
    # every meter's both days, the edited day at 0.5 instead of 2 kWh a quarter-hour
    assert sum(Decimal(t["total"]) for t in manifest["totals"]) == 2 * 96 * 6 - 96 * Decimal("1.5")
    # and the change is no longer pending, version 1 is kept, and version 2 announced once
    assert coastal.restatements.pending(CTX) == {}
    assert restated.versions[0] == v1.versions[0] and len(v1.versions[0].files) == 15
    assert [(d["export_id"], d["version"], d["reason"]) for d in export_written()] == [(export.id, 2, "edit")]


def test_a_due_schedule_larger_than_a_part_is_started_in_parts(coastal, export_written):
    # Given Coastal Power's daily NEM12 schedule, with parts of one meter-day
    from hemera.services.exports import run_due_exports, tenant_schedules

    ports = dataclasses.replace(coastal, part_meter_days=1)
    schedules = {TENANT: tenant_schedules(ports.registry, ports.schedules)[TENANT]}
    # and cp-m-2003 registered without an NMI (NEM12 leaves it out)
    meter = ports.registry.get_meter(CTX, "cp-m-2003")
    ports.registry.put_meter(CTX, dataclasses.replace(meter, nmi=None))
    # When the hourly job runs on 2 October
    outcome = run_due_exports(ports, schedules, datetime(2026, 10, 2, 6, tzinfo=ZONE), REQUESTED_AT)
    # Then the daily export of 1 October is pending in three parts, none written yet
    (daily,) = [e for e in outcome.rendering if e.id == "20261001-daily-nem12"]
    assert (daily.state, daily.rendering.parts) == (ExportState.PENDING, 3)
    # When its parts are delivered, Then it is ready with one NEM12 file per part
    for batch in queued():
        if detail_of(batch)["export_id"] == daily.id:
            assert invoke(batch) == {"batchItemFailures": []}
    ready = get_export(coastal, OPERATOR, daily.id)
    assert ready.state is ExportState.READY and ready.latest.reason == "scheduled"
    assert [f.name.split("#")[1] for f in ready.latest.files] == [
        f"COASTALPOWER2026100120261001V1P000{p}" for p in (1, 2, 3)
    ]
    # and the manifest lists cp-m-2003 as skipped by its part (the third), with the reason
    manifest = json.loads(s3_object(ready.latest.manifest_key))
    assert [(f["part"], f["skipped"]) for f in manifest["files"]] == [
        (1, []),
        (2, []),
        (3, [{"meter_id": "cp-m-2003", "reason": "no_nmi"}]),
    ]
    assert [d["export_id"] for d in export_written()] == [daily.id]
