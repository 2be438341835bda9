"""Routes of alarms (contract: `api_spec/openapi.yaml`): list the caller's alarms (filters, cursor
pages, newest first), acknowledge one (admins and operators) and a meter's theft/tamper suspicion
score with the facts behind it.

Registered through the app's `portal_route`, so the caller is resolved and typed errors mapped
exactly like every other route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalice.app import Request, Response

from hemera.domain.alarms import Alarm, TheftScore
from hemera.observability import logger
from hemera.ports import Page
from hemera.services import alarms, meter_data
from hemera.services.access import Caller, PortalPorts
from hemera.wiring import alarm_announcer, alarm_ports

from . import scope
from .commands import requester
from .http import json_response, parse_instant, utc_time

View = Callable[..., Response]
Route = Callable[..., Callable[[View], View]]


def _ports() -> alarms.AlarmPorts:
    """The tenant's data through its session; `AlarmChanged` (an acknowledgement) with the API's
    own role, which may put events on the bus (a tenant session may not)."""
    return replace(alarm_ports(scope.settings()), announcer=alarm_announcer(scope.base_settings()))


def alarm_document(alarm: Alarm) -> dict[str, Any]:
    return {
        "id": alarm.alarm_id,
        "type": alarm.type.value,
        "severity": alarm.severity,
        "subject": {"kind": alarm.key.subject.value, "id": alarm.key.subject_id},
        "state": alarm.state.value,
        "first_seen": utc_time(alarm.first_seen),
        "last_seen": utc_time(alarm.last_seen),
        "count": alarm.count,
        "facts": alarm.facts,
        "acknowledged_by": alarm.acknowledged_by,
        "acknowledged_at": utc_time(alarm.acknowledged_at),
        "closed_at": utc_time(alarm.closed_at),
        "close_reason": alarm.close_reason,
    }


def theft_score_document(score: TheftScore) -> dict[str, Any]:
    return {
        "meter_id": score.meter_id,
        "score": score.score,
        "level": score.level,
        "computed_at": utc_time(score.computed_at),
        "facts": [
            {"kind": f.kind, "points": f.points, "description": f.description, "evidence": f.evidence}
            for f in score.facts
        ],
    }


def register(
    route: Route,
    portal: Callable[[], PortalPorts],
    query: Callable[[], Mapping[str, str]],
    request: Callable[[], Request],
    limit: Callable[[], int | None],
    page_document: Callable[[Page[Any], Callable[[Any], dict[str, Any]]], dict[str, Any]],
) -> None:
    """Add the routes to the app whose `portal_route` is `route`."""

    @route("/v1/alarms")
    def get_alarms(caller: Caller) -> Response:
        q = dict(query())
        zone = meter_data.caller_tenant(portal(), caller).zone
        since = parse_instant(q["from"], zone, "from") if "from" in q else None
        until = parse_instant(q["to"], zone, "to") if "to" in q else None
        ports = _ports()
        filters = alarms.parse_alarm_query(ports, caller, q, since, until)
        page = alarms.list_alarms(ports, caller, filters, q.get("cursor"), limit())
        return json_response(page_document(page, alarm_document))

    @route("/v1/alarms/{alarm_id}/ack", methods=["POST"])
    def post_alarm_ack(caller: Caller, alarm_id: str) -> Response:
        by = requester(portal(), request().headers, caller)
        alarm = alarms.acknowledge_alarm(_ports(), caller, alarm_id, by, datetime.now(UTC))
        logger.info("alarm acknowledged", extra={"alarm": alarm.alarm_id, "state": alarm.state.value})
        return json_response(alarm_document(alarm))

    @route("/v1/meters/{meter_id}/theft-score")
    def get_theft_score(caller: Caller, meter_id: str) -> Response:
        score = alarms.meter_theft_score(_ports(), caller, meter_id, datetime.now(UTC))
        return json_response(theft_score_document(score))
