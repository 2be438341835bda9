"""On-demand exports with the in-memory ports: a request is validated (a period of at most 62
days, any number of meters), indexed `pending` and queued as `ExportRequested`; rendering it
makes version 1 (`ready`) once — in parts when it is larger than one invocation renders — and a
request whose queueing fails is marked `failed` instead of staying pending forever."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from hemera.adapters.exports_memory import (
    MemoryExportEvents,
    MemoryExportFiles,
    MemoryExportIndex,
    MemoryExportRequests,
    MemoryExportSchedules,
    MemoryPendingRestatements,
)
from hemera.adapters.final_series_memory import MemoryFinalSeries
from hemera.adapters.memory import MemoryRegistry
from hemera.domain.errors import InvalidQuery
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports.exports import ExportState
from hemera.services.access import Caller, Role
from hemera.services.exports import (
    MAX_EXPORT_DAYS,
    ExportPorts,
    RenderFailed,
    render_export_part,
    render_requested_export,
    request_export,
)

CTX = TenantContext("acme")
OPERATOR = Caller(CTX, None, Role.OPERATOR)
NOW = datetime(2026, 11, 3, 9, tzinfo=UTC)


def ports_with_meters(count: int, requests: Any = None, part_meter_days: int = 10_000) -> ExportPorts:
    registry = MemoryRegistry()
    registry.put_tenant(Tenant("acme", "Acme Power", "AU", "Australia/Sydney"))
    registry.put_meters(
        CTX, [Meter("acme", f"m-{n:03d}", "hx300", "modbus", "rtu-1", "c-1") for n in range(count)]
    )
    return ExportPorts(
        registry=registry,
        final_series=MemoryFinalSeries(),
        index=MemoryExportIndex(),
        files=MemoryExportFiles(),
        events=MemoryExportEvents(),
        schedules=MemoryExportSchedules(),
        requests=requests or MemoryExportRequests(),
        restatements=MemoryPendingRestatements(),
        part_meter_days=part_meter_days,
    )


def test_a_request_is_indexed_pending_and_queued_then_rendered_once():
    ports = ports_with_meters(3)
    export = request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    assert (export.state, export.versions, export.requested_at) == (ExportState.PENDING, (), NOW)
    assert ports.index.get(CTX, export.id) == export
    assert ports.requests.details == [{"tenant": "acme", "export_id": export.id}]  # type: ignore[attr-defined]
    ready = render_requested_export(ports, "acme", export.id, NOW)
    assert ready is not None and (ready.state, ready.latest_version) == (ExportState.READY, 1)
    assert ready.latest.files[0].key.startswith(f"tenants/acme/exports/{export.id}/v1/")
    assert render_requested_export(ports, "acme", export.id, NOW) is None  # a redelivery
    assert [d["version"] for d in ports.events.details] == [1]  # type: ignore[attr-defined]


def test_a_request_of_many_meters_is_accepted_but_not_a_period_beyond_the_cap():
    # Given a tenant of 500 meters (the old cap was 800 meter-days: 25 meters for a month)
    ports = ports_with_meters(500)
    # When an operator asks for October, Then it is accepted: it will be rendered in parts
    export = request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    assert export.state is ExportState.PENDING and len(export.meters) == 500
    # but a period longer than two billing months is still refused, before anything is written
    with pytest.raises(InvalidQuery, match=f"at most {MAX_EXPORT_DAYS} days"):
        request_export(
            ports, OPERATOR, "user:otto", {"format": "csv", "from": "2026-10-01", "to": "2026-12-03"}, NOW
        )
    assert [e.id for e in ports.index.list(CTX, None, 10).items] == [export.id]


def test_a_request_larger_than_a_part_is_queued_in_parts_and_the_last_part_finishes_it():
    # Given 100 meters and parts of at most 40 meters x 31 days
    ports = ports_with_meters(100, part_meter_days=40 * 31)
    export = request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    # When the billing function takes the request
    started = render_requested_export(ports, "acme", export.id, NOW)
    # Then it renders nothing itself but queues three parts of version 1 (40 + 40 + 20 meters)
    assert started is not None and started.rendering is not None
    assert (started.rendering.parts, started.rendering.meters_per_part) == (3, 40)
    parts = ports.requests.details[1:]  # type: ignore[attr-defined]
    assert parts == [{"tenant": "acme", "export_id": export.id, "version": 1, "part": p} for p in (1, 2, 3)]
    # and a redelivered request queues nothing more
    assert render_requested_export(ports, "acme", export.id, NOW) is None
    assert len(ports.requests.details) == 4  # type: ignore[attr-defined]
    # When parts 3 and 1 are rendered, Then the export is still pending and nothing is announced
    for part in (3, 1):
        assert render_export_part(ports, "acme", export.id, 1, part, NOW) is not None
    assert ports.index.get(CTX, export.id).state is ExportState.PENDING
    assert ports.events.details == []  # type: ignore[attr-defined]
    # When part 1 is delivered again, Then it is skipped (recorded already)
    assert render_export_part(ports, "acme", export.id, 1, 1, NOW) is None
    # When the last part is rendered, Then version 1 is ready with one CSV per part
    ready = render_export_part(ports, "acme", export.id, 1, 2, NOW)
    assert ready is not None and (ready.state, ready.latest_version) == (ExportState.READY, 1)
    assert [(f.part, f.name) for f in ready.latest.files] == [
        (p, f"acme_20261001_20261031_v1_part-{p:04d}.csv") for p in (1, 2, 3)
    ]
    assert [f.rows for f in ready.latest.files] == [0, 0, 0]  # no final data stored: headers only
    # and it is announced once, even when the last part is delivered again
    assert render_export_part(ports, "acme", export.id, 1, 2, NOW) is None
    assert [(d["version"], d["file_count"]) for d in ports.events.details] == [(1, 3)]  # type: ignore[attr-defined]


class BrokenFiles(MemoryExportFiles):
    def put(self, ctx: TenantContext, key: str, content: bytes, content_type: str) -> None:
        raise OSError("the bucket is gone")


def test_a_part_that_fails_its_last_attempt_fails_the_export():
    # Given a request started in two parts
    ports = ports_with_meters(2, part_meter_days=31)
    export = request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    render_requested_export(ports, "acme", export.id, NOW)
    broken = dataclasses.replace(ports, files=BrokenFiles())
    # When part 1 cannot be written, Then an attempt that is not the last raises for a retry
    with pytest.raises(RenderFailed):
        render_export_part(broken, "acme", export.id, 1, 1, NOW, last_attempt=False)
    assert ports.index.get(CTX, export.id).state is ExportState.PENDING
    # When its last attempt fails too, Then the export is failed with the part and the reason
    failed = render_export_part(broken, "acme", export.id, 1, 1, NOW, last_attempt=True)
    assert failed is not None and failed.state is ExportState.FAILED
    assert ports.index.get(CTX, export.id).failure == "part 1: rendering failed on every attempt (OSError)"
    # and part 2 arriving afterwards does nothing: no version, no announcement
    assert render_export_part(ports, "acme", export.id, 1, 2, NOW) is None
    assert ports.index.get(CTX, export.id).latest_version is None
    assert ports.events.details == []  # type: ignore[attr-defined]


class RefusingBus:
    def requested(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        raise RuntimeError("EventBridge refused the ExportRequested event")


def test_a_request_that_cannot_be_queued_is_failed_not_left_pending():
    ports = ports_with_meters(1, requests=RefusingBus())
    with pytest.raises(RuntimeError):
        request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    (export,) = ports.index.list(CTX, None, 10).items
    assert (export.state, export.failure) == (
        ExportState.FAILED,
        "the request could not be queued; ask again",
    )
