"""On-demand exports with the in-memory ports: a request is validated, held to the meter-day cap
one invocation of the billing function can render, indexed `pending` and queued as
`ExportRequested`; rendering it makes version 1 (`ready`) once, and a request whose queueing
fails is marked `failed` instead of staying pending forever."""

from __future__ import annotations

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
    MAX_ON_DEMAND_METER_DAYS,
    ExportPorts,
    render_requested_export,
    request_export,
)

CTX = TenantContext("acme")
OPERATOR = Caller(CTX, None, Role.OPERATOR)
NOW = datetime(2026, 11, 3, 9, tzinfo=UTC)


def ports_with_meters(count: int, requests: Any = None) -> ExportPorts:
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


def test_a_request_beyond_the_meter_day_cap_is_refused_before_anything_is_written():
    meters = MAX_ON_DEMAND_METER_DAYS // 31 + 1  # one meter too many for a 31-day month
    ports = ports_with_meters(meters)
    with pytest.raises(InvalidQuery, match="meter-days"):
        request_export(ports, OPERATOR, "user:otto", {"format": "csv", "period": "2026-10"}, NOW)
    assert ports.index.list(CTX, None, 10).items == []
    # the same meters for one day are within the cap
    fits = request_export(
        ports, OPERATOR, "user:otto", {"format": "csv", "from": "2026-10-01", "to": "2026-10-02"}, NOW
    )
    assert fits.state is ExportState.PENDING and len(fits.meters) == meters


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
