"""Routes of device events and outages, as the translate function stored them from the meters'
event logs and load-profile outage bits (contract: `api_spec/openapi.yaml`).

Registered through the app's `portal_route`, like `instantaneous`, so it resolves the caller and
maps typed errors like every other route: a meter of another tenant or customer is 404, and a
customer user's tenant-wide outage list holds its own meters only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from chalice.app import Response

from hemera.domain.meter_events import MeterEvent, Outage
from hemera.observability import logger
from hemera.services import meter_data
from hemera.services.access import Caller, PortalPorts
from hemera.services.device_events import (
    OutageLog,
    meter_events_page,
    meter_outages,
    page_limit,
    parse_event_type,
    tenant_outages,
)
from hemera.wiring import meter_event_store

from . import scope
from .http import json_response, parse_instant, required

View = Callable[..., Response]
Route = Callable[[str], Callable[[View], View]]

_BOUND = "a date or an ISO-8601 time with offset"


def event_document(event: MeterEvent) -> dict[str, Any]:
    return {
        "type": event.type.value,
        "at": event.at.astimezone(UTC).isoformat(),
        "code": event.code,
        "rtu_id": event.device_id,
        "detail": event.detail,
    }


def outage_document(outage: Outage) -> dict[str, Any]:
    duration = outage.duration
    return {
        "meter_id": outage.meter_id,
        "start": outage.start.astimezone(UTC).isoformat(),
        "end": None if outage.end is None else outage.end.astimezone(UTC).isoformat(),
        "duration_s": None if duration is None else int(duration.total_seconds()),
        "source": outage.source.value,
    }


def _stored_events() -> OutageLog:
    return meter_event_store(scope.settings())


def register(
    route: Route,
    ports: Callable[[], PortalPorts],
    query: Callable[[], Mapping[str, str]],
    log: Callable[[], OutageLog] = _stored_events,
) -> None:
    """Add the routes to the app whose `portal_route` is `route` (`log`: the device event log,
    the readings table by default)."""

    def bounds(caller: Caller, q: Mapping[str, str]) -> tuple[Any, Any]:
        zone = meter_data.caller_tenant(ports(), caller).zone
        return (
            parse_instant(required(q, "from", _BOUND), zone, "from"),
            parse_instant(required(q, "to", _BOUND), zone, "to"),
        )

    @route("/v1/meters/{meter_id}/events")
    def get_meter_events(caller: Caller, meter_id: str) -> Response:
        q = query()
        start, end = bounds(caller, q)
        kind, limit = parse_event_type(q.get("type")), page_limit(q.get("limit"))
        page = meter_events_page(ports(), log(), caller, meter_id, start, end, kind, q.get("cursor"), limit)
        logger.info("meter events served", extra={"meter": meter_id, "events": len(page.events)})
        return json_response(
            {
                "meter_id": page.meter.id,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "items": [event_document(e) for e in page.events],
                "next_cursor": page.next_cursor,
            }
        )

    @route("/v1/meters/{meter_id}/outages")
    def get_meter_outages(caller: Caller, meter_id: str) -> Response:
        start, end = bounds(caller, query())
        meter, outages = meter_outages(ports(), log(), caller, meter_id, start, end)
        return json_response(
            {
                "meter_id": meter.id,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "items": [outage_document(o) for o in outages],
            }
        )

    @route("/v1/outages")
    def get_outages(caller: Caller) -> Response:
        start, end = bounds(caller, query())
        outages = tenant_outages(ports(), log(), caller, start, end)
        return json_response(
            {"from": start.isoformat(), "to": end.isoformat(), "items": [outage_document(o) for o in outages]}
        )
