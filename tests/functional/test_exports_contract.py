"""The in-memory export index, files and pending restatements and their AWS adapters (DynamoDB and
S3 on moto) pass the same cases: create once, a pending export completed once, versions only from
the expected one, newest period first in pages, the exports near a day, keys only under the
tenant's own prefix, pending restatements recorded idempotently and cleared exactly."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import boto3
import pytest

from hemera import aws
from hemera.adapters.exports_dynamodb import (
    DynamoExportIndex,
    DynamoExportSchedules,
    DynamoPendingRestatements,
    export_model,
    export_schedules_model,
    pending_restatement_model,
)
from hemera.adapters.exports_memory import (
    MemoryExportFiles,
    MemoryExportIndex,
    MemoryExportRequests,
    MemoryExportSchedules,
    MemoryPendingRestatements,
)
from hemera.adapters.exports_s3 import EventBridgeExportRequests, S3ExportFiles
from hemera.definitions import BILLING_SOURCE, EXPORT_REQUESTED
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.final_series import FinalDayChange
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.ports.exports import (
    ChannelDiff,
    ChannelTotal,
    Export,
    ExportedFile,
    ExportRendering,
    ExportState,
    ExportVersion,
)
from hemera.tenants import ExportSchedule

ACME, ACME_CORP = TenantContext("acme"), TenantContext("acme-corp")


def version(number: int, reason: str = "scheduled") -> ExportVersion:
    prefix = f"tenants/acme/exports/x/v{number}/"
    return ExportVersion(
        version=number,
        created_at=datetime(2026, 11, 1, number, tzinfo=UTC),
        reason=reason,
        manifest_key=prefix + "manifest.json",
        files=(ExportedFile("a.csv", "csv", "text/csv", prefix + "a.csv", "0" * 64, 10, 3, {"active_import_kWh": Decimal("1.5")}),),
        totals=(ChannelTotal("m-1", "active_import", Decimal("1.5"), 1, 96),),
        diff=(ChannelDiff("m-1", "active_import", Decimal(1), Decimal("1.5"), 2),) if number > 1 else (),
        source_digest=f"d{number}",
    )  # fmt: skip


def export(export_id: str, first: date, last: date, tenant: str = "acme", versions: int = 1) -> Export:
    return Export(
        tenant, export_id, ("csv",), first, last, "monthly", "schedule:monthly", ("m-1",),
        tuple(version(n) for n in range(1, versions + 1)),
    )  # fmt: skip


@pytest.fixture(params=["memory", "dynamodb"])
def index(request, moto_cloud):
    if request.param == "memory":
        return MemoryExportIndex()
    host = aws.endpoint_url(moto_cloud.aws, "dynamodb")
    return DynamoExportIndex(export_model(moto_cloud.readings_table, moto_cloud.aws, host))


@pytest.fixture(params=["memory", "s3"])
def files(request, moto_cloud):
    if request.param == "memory":
        return MemoryExportFiles()
    return S3ExportFiles(boto3.client("s3"), moto_cloud.exports_bucket)


def test_an_export_is_created_once_and_read_back_without_its_totals(index):
    index.create(ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31)))
    with pytest.raises(ConcurrentUpdate):
        index.create(ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31)))
    stored = index.get(ACME, "20261001-monthly")
    assert stored.latest.files == version(1).files and stored.latest.totals == ()
    assert index.get(ACME_CORP, "20261001-monthly") is None


def test_a_version_is_added_only_on_top_of_the_expected_one(index):
    index.create(ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31)))
    index.add_version(ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31), versions=2), 1)
    with pytest.raises(ConcurrentUpdate):
        index.add_version(
            ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31), versions=3), 1
        )
    stored = index.get(ACME, "20261001-monthly")
    assert [v.version for v in stored.versions] == [1, 2]
    assert stored.latest.diff == version(2).diff


def test_a_pending_export_is_completed_once_and_lists_with_its_state(index):
    # Given an on-demand export accepted as pending (no version yet)
    requested = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    pending = replace(
        export("20261001-od-1a2b3c4d", date(2026, 10, 1), date(2026, 10, 31), versions=0),
        state=ExportState.PENDING,
        requested_at=requested,
    )
    index.create(ACME, pending)
    stored = index.get(ACME, pending.id)
    assert (stored.state, stored.versions, stored.requested_at) == (ExportState.PENDING, (), requested)
    assert [e.state for e in index.list(ACME, None, 10).items] == [ExportState.PENDING]
    # and no version can be added to it
    with pytest.raises(ConcurrentUpdate):
        index.add_version(ACME, replace(pending, versions=(version(1),), state=ExportState.READY), 0)
    # When it is rendered, Then it is ready with version 1
    index.complete(ACME, replace(pending, versions=(version(1, "on_demand"),), state=ExportState.READY))
    ready = index.get(ACME, pending.id)
    assert (ready.state, ready.latest_version, ready.latest.reason) == (ExportState.READY, 1, "on_demand")
    # and a second delivery cannot complete it again (not even as failed)
    with pytest.raises(ConcurrentUpdate):
        index.complete(ACME, replace(pending, state=ExportState.FAILED, failure="boom"))
    assert index.get(ACME, pending.id).state is ExportState.READY


def test_a_failed_export_keeps_its_problem(index):
    pending = replace(
        export("20261001-od-00000001", date(2026, 10, 1), date(2026, 10, 31), versions=0),
        state=ExportState.PENDING,
        requested_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    index.create(ACME, pending)
    index.complete(ACME, replace(pending, state=ExportState.FAILED, failure="TenantNotFound: gone"))
    stored = index.get(ACME, pending.id)
    assert (stored.state, stored.failure, stored.latest_version) == (
        ExportState.FAILED,
        "TenantNotFound: gone",
        None,
    )


def test_exports_list_newest_period_first_in_pages_and_never_across_tenants(index):
    for month in (8, 9, 10):
        index.create(ACME, export(f"2026{month:02d}01-monthly", date(2026, month, 1), date(2026, month, 28)))
    index.create(
        ACME_CORP, export("20261101-monthly", date(2026, 11, 1), date(2026, 11, 30), tenant="acme-corp")
    )
    first = index.list(ACME, None, 2)
    assert [e.id for e in first.items] == ["20261001-monthly", "20260901-monthly"]
    second = index.list(ACME, first.next_cursor, 2)
    assert [e.id for e in second.items] == ["20260801-monthly"] and second.next_cursor is None


def test_the_exports_near_changed_days_are_those_whose_period_holds_them(index):
    index.create(ACME, export("20260901-monthly", date(2026, 9, 1), date(2026, 9, 30)))
    index.create(ACME, export("20260915-cycle", date(2026, 9, 15), date(2026, 10, 14)))
    index.create(ACME, export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31)))
    assert [e.id for e in index.overlapping(ACME, date(2026, 10, 5), date(2026, 10, 5))] == [
        "20260915-cycle",
        "20261001-monthly",
    ]
    assert [e.id for e in index.overlapping(ACME, date(2026, 9, 2), date(2026, 9, 3))] == ["20260901-monthly"]
    assert index.overlapping(ACME_CORP, date(2026, 9, 1), date(2026, 10, 31)) == []


def test_files_live_only_under_the_tenants_exports_prefix(files):
    key = "tenants/acme/exports/20261001-monthly/v1/a.csv"
    files.put(ACME, key, b"meter,value\n", "text/csv")
    assert files.get(ACME, key) == b"meter,value\n"
    for outside in (
        "tenants/acme-corp/exports/x/v1/a.csv",
        "tenants/acme/raw/x",
        "tenants/acme/exports/../raw/x",
    ):
        with pytest.raises(ValueError):
            files.put(ACME, outside, b"", "text/csv")
    with pytest.raises(ValueError):
        files.get(ACME_CORP, key)
    assert "20261001-monthly" in files.download_url(ACME, key, "a.csv", 60)


@pytest.fixture(params=["memory", "dynamodb"])
def schedules(request, moto_cloud):
    if request.param == "memory":
        return MemoryExportSchedules()
    host = aws.endpoint_url(moto_cloud.aws, "dynamodb")
    return DynamoExportSchedules(export_schedules_model(moto_cloud.readings_table, moto_cloud.aws, host))


def test_a_tenants_schedules_round_trip_and_stay_in_their_tenant(schedules):
    acme, corp = TenantContext("acme"), TenantContext("acme-corp")
    daily = ExportSchedule.model_validate(
        {"id": "daily-csv", "format": "csv", "period": "previous_day", "at_hour": 2}
    )
    monthly = ExportSchedule.model_validate({"id": "monthly", "formats": ["nem12", "csv"], "day_of_month": 3})
    schedules.put_schedules(acme, [daily, monthly])
    assert schedules.schedules(acme) == (daily, monthly)
    assert schedules.schedules(corp) == ()
    # a tenant file without exports any more clears them
    schedules.put_schedules(acme, [])
    assert schedules.schedules(acme) == ()


@pytest.fixture(params=["memory", "dynamodb"])
def pending(request, moto_cloud):
    if request.param == "memory":
        return MemoryPendingRestatements()
    host = aws.endpoint_url(moto_cloud.aws, "dynamodb")
    return DynamoPendingRestatements(
        pending_restatement_model(moto_cloud.readings_table, moto_cloud.aws, host)
    )


def change(day: int, version: int, cause: str = "late_data", meter: str = "m-1") -> FinalDayChange:
    return FinalDayChange(
        meter, Channel.ACTIVE_IMPORT, date(2026, 10, day), version, version - 1 or None, cause
    )


def test_pending_restatements_are_recorded_once_per_export_and_tenant(pending):
    # Given changes recorded for two exports of acme, one of them twice (a redelivered event)
    pending.record(ACME, "20261001-monthly", [change(5, 2), change(6, 2, "edit")])
    pending.record(ACME, "20261001-monthly", [change(5, 2)])
    pending.record(ACME, "20260915-cycle", [change(5, 2)])
    # Then each export lists its distinct changes, as they were announced
    found = pending.pending(ACME)
    assert sorted(found) == ["20260915-cycle", "20261001-monthly"]
    assert sorted(found["20261001-monthly"], key=lambda c: c.local_day) == [
        change(5, 2),
        change(6, 2, "edit"),
    ]
    # and another tenant (whose id starts the same) has none
    assert pending.pending(ACME_CORP) == {}


def test_clearing_forgets_exactly_the_changes_rendered(pending):
    pending.record(ACME, "20261001-monthly", [change(5, 2), change(6, 2)])
    rendered = pending.pending(ACME)["20261001-monthly"]
    # While the version renders, day 5 changes again (version 3) and day 7 changes
    pending.record(ACME, "20261001-monthly", [change(5, 3), change(7, 2)])
    pending.clear(ACME, "20261001-monthly", rendered)
    left = pending.pending(ACME)["20261001-monthly"]
    assert sorted((c.local_day.day, c.version) for c in left) == [(5, 3), (7, 2)]
    pending.clear(ACME, "20261001-monthly", left)
    assert pending.pending(ACME) == {}


# --- versions rendered in parts --------------------------------------------------------------------
def rendering(version_number: int, parts: int = 3) -> ExportRendering:
    return ExportRendering(version_number, parts, 40, "scheduled", datetime(2026, 11, 2, 5, tzinfo=UTC))


def test_a_rendering_in_parts_starts_once_and_counts_each_part_once(index):
    # Given a scheduled export indexed pending with a rendering of three parts
    pending = replace(
        export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31), versions=0),
        state=ExportState.PENDING,
        rendering=rendering(1),
    )
    index.create(ACME, pending)
    stored = index.get(ACME, pending.id)
    assert stored.rendering == rendering(1) and stored.rendering.parts_done == frozenset()
    # When its parts are recorded (3, then 1), Then each returns how many are recorded now
    assert index.record_part(ACME, pending.id, 1, 3) == 1
    assert index.record_part(ACME, pending.id, 1, 1) == 2
    # and a part recorded again (a redelivery) is refused, the count unchanged
    with pytest.raises(ConcurrentUpdate):
        index.record_part(ACME, pending.id, 1, 1)
    # and so is a part of another version
    with pytest.raises(ConcurrentUpdate):
        index.record_part(ACME, pending.id, 2, 2)
    assert index.get(ACME, pending.id).rendering.parts_done == frozenset({1, 3})
    # When the last part is recorded, Then the count says all of them
    assert index.record_part(ACME, pending.id, 1, 2) == 3
    assert index.get(ACME, pending.id).rendering.complete
    # When the version is completed, Then the rendering is gone and no part can be recorded
    index.complete(ACME, replace(pending, versions=(version(1),), state=ExportState.READY, rendering=None))
    ready = index.get(ACME, pending.id)
    assert (ready.state, ready.rendering) == (ExportState.READY, None)
    with pytest.raises(ConcurrentUpdate):
        index.record_part(ACME, pending.id, 1, 2)


def test_a_restatement_in_parts_starts_only_on_the_expected_version_and_only_once(index):
    # Given a ready export at version 1
    ready = export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31))
    index.create(ACME, ready)
    # When a restatement in parts is started on a wrong version, Then it is refused
    with pytest.raises(ConcurrentUpdate):
        index.start_rendering(ACME, replace(ready, rendering=rendering(3)), 2)
    # When it is started on version 1, Then the export is still ready at version 1 and renders v2
    index.start_rendering(ACME, replace(ready, rendering=rendering(2)), 1)
    stored = index.get(ACME, ready.id)
    assert (stored.state, stored.latest_version, stored.rendering) == (ExportState.READY, 1, rendering(2))
    # and a second start (a concurrent job) is refused while it renders
    with pytest.raises(ConcurrentUpdate):
        index.start_rendering(ACME, replace(ready, rendering=rendering(2)), 1)
    # When the two parts are recorded and version 2 is added, Then the rendering is over
    assert [index.record_part(ACME, ready.id, 2, p) for p in (2, 1)] == [1, 2]
    index.add_version(ACME, replace(ready, versions=(version(1), version(2)), rendering=None), 1)
    assert (index.get(ACME, ready.id).latest_version, index.get(ACME, ready.id).rendering) == (2, None)
    # and a pending export takes a rendering from version 0; a failed one never does
    pending = replace(
        export("20261001-od-00000002", date(2026, 10, 1), date(2026, 10, 31), versions=0),
        state=ExportState.PENDING,
    )
    index.create(ACME, pending)
    index.start_rendering(ACME, replace(pending, rendering=rendering(1)), 0)
    assert index.get(ACME, pending.id).rendering == rendering(1)
    failed = replace(pending, id="20261001-od-00000003", state=ExportState.FAILED, failure="boom")
    index.create(ACME, failed)
    with pytest.raises(ConcurrentUpdate):
        index.start_rendering(ACME, replace(failed, rendering=rendering(1)), 0)


def test_parts_are_recorded_only_in_their_own_tenant(index):
    index.create(ACME, replace(export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31), versions=0), state=ExportState.PENDING, rendering=rendering(1)))  # fmt: skip
    with pytest.raises(ConcurrentUpdate):
        index.record_part(ACME_CORP, "20261001-monthly", 1, 1)
    assert index.get(ACME, "20261001-monthly").rendering.parts_done == frozenset()


@pytest.fixture(params=["memory", "eventbridge"])
def part_requests(request, moto_cloud):
    """The requests port and a reader of what it queued (the details, in order)."""
    if request.param == "memory":
        memory = MemoryExportRequests()

        def taken() -> list[dict]:
            found, memory.details[:] = list(memory.details), []
            return found

        return memory, taken
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="test-export-parts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [BILLING_SOURCE], "detail-type": [EXPORT_REQUESTED]}
    events.put_rule(Name="test-parts", EventBusName=moto_cloud.event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="test-parts", EventBusName=moto_cloud.event_bus, Targets=[{"Id": "q", "Arn": arn}]
    )

    def queued() -> list[dict]:
        found = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return EventBridgeExportRequests(events, moto_cloud.event_bus), queued


def test_every_part_of_a_version_is_queued_and_only_for_its_own_tenant(part_requests):
    requests, queued = part_requests
    # When 23 parts are queued (more than one PutEvents call takes)
    details = [
        {"tenant": "acme", "export_id": "20261001-monthly", "version": 1, "part": p} for p in range(1, 24)
    ]
    requests.parts_requested(ACME, details)
    # Then every one of them is queued, once
    assert sorted(d["part"] for d in queued()) == list(range(1, 24))
    # and a detail of another tenant is refused, nothing queued
    with pytest.raises(ValueError):
        requests.parts_requested(ACME, [{**details[0], "tenant": "acme-corp"}])
    assert queued() == []


def test_the_files_of_a_version_in_parts_are_left_to_its_manifest(index):
    # Given an export whose version 2 was rendered in 3 parts (version 1 in one)
    parted = replace(version(2), parts=3)
    stored = replace(
        export("20261001-monthly", date(2026, 10, 1), date(2026, 10, 31)), versions=(version(1), parted)
    )
    index.create(ACME, stored)
    # Then the index keeps version 1's files, and of version 2 its parts and manifest only
    v1, v2 = index.get(ACME, stored.id).versions
    assert v1.files == version(1).files and v1.parts == 1
    assert (v2.files, v2.parts, v2.manifest_key) == ((), 3, parted.manifest_key)
