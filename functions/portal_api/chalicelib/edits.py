"""Routes of operators' interval edits (contract: `api_spec/openapi.yaml`): `POST
/v1/meters/{meter_id}/edits` stores the edits and recomputes (VEE) the local days they fall in
before it answers, so the response names each day's new data version; the earlier versions stay
readable (`GET …/load-profile?version=N`).

Who may edit is decided where commands decide it (admins and operators; any other caller who
reaches the meter gets 403, a meter out of reach 404). The editor recorded with each edit is the
requester of the audit trail of commands: the Cognito user, or the API key's fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalice.app import Request, Response

from hemera.domain.errors import InvalidEdit
from hemera.domain.final_series import FinalDayChange
from hemera.observability import logger
from hemera.ports.final_series import FinalSeriesReader
from hemera.services.access import Caller, PortalPorts
from hemera.services.vee import EditResult, VeePorts, record_edits
from hemera.wiring import final_days_announcer, final_series_store, vee_ports

from . import scope
from .commands import requester
from .http import json_object, json_response

View = Callable[..., Response]
Route = Callable[..., Callable[[View], View]]


def _ports() -> VeePorts:
    """The tenant's data through its session; `FinalDaysChanged` with the API's own role, which
    may put events on the bus (a tenant session may not)."""
    return replace(vee_ports(scope.settings()), announcer=final_days_announcer(scope.base_settings()))


def final_series() -> FinalSeriesReader:
    """The final days the load profile serves (cached with the runtime's settings)."""
    return final_series_store(scope.settings())


def _day_document(change: FinalDayChange) -> dict[str, Any]:
    return {
        "local_day": change.local_day.isoformat(),
        "version": change.version,
        "previous_version": change.previous_version,
        "estimated": change.estimated,
        "missing": change.missing,
        "failed_rules": list(change.failed_rules),
    }


def edit_document(result: EditResult) -> dict[str, Any]:
    return {
        "meter_id": result.meter_id,
        "channel": result.channel.value,
        "edits": result.edits,
        "days": [_day_document(d) for d in result.days],
    }


def _body(request: Request) -> dict[str, Any]:
    return json_object(request, InvalidEdit, '{"channel": …, "edits": [{"start", "value", "reason"}]}')


def register(route: Route, portal: Callable[[], PortalPorts], request: Callable[[], Request]) -> None:
    """Add the routes to the app whose `portal_route` is `route`."""

    @route("/v1/meters/{meter_id}/edits", methods=["POST"])
    def post_edits(caller: Caller, meter_id: str) -> Response:
        req = request()
        body = _body(req)
        by = requester(portal(), req.headers, caller)
        result = record_edits(_ports(), caller, by, meter_id, body, datetime.now(UTC))
        logger.info(
            "intervals edited",
            extra={
                "meter": meter_id,
                "edits": result.edits,
                "days": [f"{d.local_day}@{d.version}" for d in result.days],
            },
        )
        return json_response(edit_document(result), status=200)
