"""Customer Portal API (Chalice on API Gateway): what a utility's portal shows its customers.

Contract: `api_spec/openapi.yaml`. Every route but `/v1/health` authenticates the caller once
(`x-api-key` → tenant) in `portal_route`, and every object access checks ownership: a meter of
another tenant answers 404 exactly like an unknown one. Errors are `application/problem+json`,
mapped from the typed errors in one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache, wraps
from typing import Any
from zoneinfo import ZoneInfo

from chalice.app import Chalice, Request, Response

from hemera.config import RuntimeSettings
from hemera.domain.errors import HemeraError, InvalidQuery, MeterNotFound, TenantNotFound, Unauthenticated
from hemera.domain.readings import CHANNEL_UNITS
from hemera.domain.tenancy import TenantContext
from hemera.observability import logger
from hemera.services.access import LoadProfile, PortalPorts, authenticate, load_profile
from hemera.wiring import portal_ports

app = Chalice(app_name="hemera-portal-api")

# The one place where typed errors become HTTP statuses (RFC 9457 problem details).
_STATUS: dict[type[HemeraError], tuple[int, str]] = {
    Unauthenticated: (401, "Unauthorized"),
    MeterNotFound: (404, "Not Found"),
    TenantNotFound: (404, "Not Found"),
    InvalidQuery: (400, "Bad Request"),
}
PROBLEM_JSON = "application/problem+json"


@cache
def _ports() -> PortalPorts:
    return portal_ports(RuntimeSettings.from_environ(os.environ))


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> Response:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    return Response(body=json.dumps(body), status_code=status, headers={"Content-Type": PROBLEM_JSON})


def _problem_for(error: HemeraError) -> Response:
    for kind, (status, title) in _STATUS.items():
        if isinstance(error, kind):
            return problem(status, title, str(error), f"urn:hemera:problem:{error.reason}")
    raise error


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


def _correlation_id() -> str:
    context = _request().context or {}
    return str(context.get("requestId", ""))


def portal_route(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A GET route that authenticates the caller and turns typed errors into problem responses."""

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(view)
        def handle(**params: str) -> Response:
            # A warm function serves many callers: no key of the previous request may linger.
            logger.append_keys(tenant=None, correlation_id=_correlation_id())
            try:
                api_key = _request().headers.get("x-api-key")
                ctx = authenticate(_ports().keys, api_key, _correlation_id())
                logger.append_keys(tenant=ctx.tenant_id)
                return view(ctx, **params)
            except HemeraError as error:
                logger.info("request refused", extra={"reason": error.reason, "path": path})
                return _problem_for(error)

        app.route(path, methods=["GET"])(handle)
        return handle

    return decorate


@app.route("/v1/health", methods=["GET"])
def health() -> Response:
    return json_response({"status": "ok"})


# Bounds of a query: the API adds a day to `from` and works in UTC, which must not overflow.
_IN_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC))


def parse_instant(value: str, zone: ZoneInfo, name: str) -> datetime:
    """A query bound: a date (local midnight of the tenant) or an ISO-8601 time with offset."""
    try:
        if len(value) == 10:
            instant = datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        else:
            instant = datetime.fromisoformat(value)
    except ValueError as exc:
        # An unencoded "+11:00" reaches us as " 11:00": say so rather than just "invalid".
        hint = " (encode a + offset as %2B)" if " " in value else ""
        raise InvalidQuery(f"{name}={value!r} is neither a date nor an ISO-8601 time{hint}") from exc
    if instant.tzinfo is None:
        raise InvalidQuery(f"{name}={value!r} needs a UTC offset, e.g. 2026-11-20T00:00:00-03:00")
    try:
        in_range = _IN_RANGE[0] <= instant.astimezone(UTC) <= _IN_RANGE[1]
    except OverflowError:
        in_range = False
    if not in_range:
        raise InvalidQuery(f"{name}={value!r} is outside the years 1970-9998")
    return instant


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def load_profile_document(profile: LoadProfile) -> dict[str, Any]:
    zone = profile.tenant.zone
    intervals = [
        {
            "start": r.start.astimezone(zone).isoformat(),
            "end": r.end.astimezone(zone).isoformat(),
            "value": _number(r.value),
            "status": r.status.value,
            "quality": r.quality_flag,
            "source": r.source.value,
        }
        for r in profile.intervals
    ]
    minutes = profile.intervals[0].length_minutes if profile.intervals else 15
    # In UTC: local wall-clock arithmetic would call a 23-hour DST day 24 hours long.
    expected = int((profile.end.astimezone(UTC) - profile.start.astimezone(UTC)) / timedelta(minutes=minutes))
    return {
        "meter_id": profile.meter.id,
        "channel": profile.channel.value,
        "unit": CHANNEL_UNITS[profile.channel].value,
        "interval_minutes": minutes,
        "timezone": profile.tenant.timezone,
        "from": profile.start.astimezone(zone).isoformat(),
        "to": profile.end.astimezone(zone).isoformat(),
        "summary": {
            "intervals": len(intervals),
            "expected_intervals": expected,
            "total": _number(sum((r.value for r in profile.intervals), Decimal(0))),
        },
        "intervals": intervals,
    }


@portal_route("/v1/meters/{meter_id}/load-profile")
def get_load_profile(ctx: TenantContext, meter_id: str) -> Response:
    query: Mapping[str, str] = _request().query_params or {}
    ports = _ports()
    tenant = ports.registry.get_tenant(ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {ctx.tenant_id} is not registered")
    if "from" not in query:
        raise InvalidQuery("from is required (a date or an ISO-8601 time with offset)")
    start = parse_instant(query["from"], tenant.zone, "from")
    end = parse_instant(query["to"], tenant.zone, "to") if "to" in query else start + timedelta(days=1)
    profile = load_profile(ports, ctx, meter_id, query.get("channel", "active_import"), start, end)
    logger.info("load profile served", extra={"meter": meter_id, "intervals": len(profile.intervals)})
    return json_response(load_profile_document(profile))
