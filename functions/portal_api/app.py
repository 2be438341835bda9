"""Customer Portal API (Chalice on API Gateway): what a utility's portal shows its customers.

Contract: `api_spec/openapi.yaml`. Every route but `/v1/health` authenticates the caller once
(a Cognito JWT or an `x-api-key` → tenant and role, and a customer for a customer user, a
customer-scoped key or a third party's consent) in `portal_route`, and every
object access checks ownership: a meter or customer of another tenant (or customer) answers 404
exactly like an unknown one. Errors are `application/problem+json`, mapped from the typed errors
in one table. Every response carries `x-request-id` (the caller's, or a new one); single resources
carry an ETag and answer 304 to a matching `If-None-Match`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cache, wraps
from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib import alarms, billing, commands, edits, events, exports, instantaneous, meter_data, scope
from chalicelib.documents import load_profile_csv, load_profile_document
from chalicelib.http import csv_response, json_response, number, parse_instant, wants_csv
from hemera.domain.alarms import AlarmForbidden, AlarmNotFound
from hemera.domain.commands import CommandForbidden, CommandNotFound
from hemera.domain.errors import (
    CustomerNotFound,
    EditForbidden,
    ExportForbidden,
    ExportNotFound,
    HemeraError,
    InvalidQuery,
    MeterNotFound,
    TariffNotConfigured,
    TenantNotFound,
    Unauthenticated,
)
from hemera.domain.rate_limits import RateDecision, RateLimited
from hemera.domain.registry import Customer, Meter
from hemera.observability import logger
from hemera.ports import Page
from hemera.ports.rate_limits import RequestCounter
from hemera.services.access import (
    Caller,
    PortalPorts,
    list_customers,
    list_meters,
    owned_customer,
    owned_meter,
)
from hemera.services.callers import authenticate_request
from hemera.services.rate_limits import StoredRateLimits, admit
from hemera.services.vee import final_load_profile
from hemera.wiring import (
    api_limit_store,
    final_series_store,
    instantaneous_store,
    portal_ports,
    request_counter,
)

app = Chalice(app_name="hemera-portal-api")

# The one place where typed errors become HTTP statuses (RFC 9457 problem details).
_STATUS: dict[type[HemeraError], tuple[int, str]] = {
    Unauthenticated: (401, "Unauthorized"),
    MeterNotFound: (404, "Not Found"),
    CustomerNotFound: (404, "Not Found"),
    TenantNotFound: (404, "Not Found"),
    InvalidQuery: (400, "Bad Request"),
    CommandNotFound: (404, "Not Found"),
    CommandForbidden: (403, "Forbidden"),
    AlarmNotFound: (404, "Not Found"),
    AlarmForbidden: (403, "Forbidden"),
    RateLimited: (429, "Too Many Requests"),
    TariffNotConfigured: (409, "Conflict"),
    EditForbidden: (403, "Forbidden"),
    ExportNotFound: (404, "Not Found"),
    ExportForbidden: (403, "Forbidden"),
}
PROBLEM_JSON = "application/problem+json"


def _ports() -> PortalPorts:
    """The request's data access: the caller's tenant session (chalicelib/scope.py)."""
    return portal_ports(scope.settings())


def _auth_ports() -> PortalPorts:
    """Resolving the caller (API keys, consents, Cognito keys) happens before a tenant is known:
    with the function's own role."""
    return portal_ports(scope.base_settings())


@cache
def _rate_limits() -> StoredRateLimits:
    """Each tenant's allowance as onboarding stored it, kept a minute (read with the API's role)."""
    return StoredRateLimits(api_limit_store(scope.base_settings()))


@cache
def _counter() -> RequestCounter:
    return request_counter(scope.base_settings())


def _admit(caller: Caller) -> RateDecision:
    """Count the request against its tenant's per-minute allowance (429 past it)."""
    return admit(_counter(), _rate_limits(), caller.ctx, time.time())


def _rate_headers(response: Response, decision: RateDecision) -> Response:
    # The IETF draft's names (draft-ietf-httpapi-ratelimit-headers): the tenant's allowance and
    # what is left of it in the current one-minute window.
    response.headers["RateLimit-Limit"] = str(decision.limit)
    response.headers["RateLimit-Remaining"] = str(decision.remaining)
    return response


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


# A caller's request id is echoed only if it is a plain token: it ends up in logs and headers.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _request_id() -> str:
    """The caller's `x-request-id`, else API Gateway's request id, else a new one."""
    given = _request().headers.get("x-request-id", "")
    if _REQUEST_ID.match(given):
        return given
    context = _request().context or {}
    return str(context.get("requestId") or uuid.uuid4())


def _with_request_id(response: Response, request_id: str) -> Response:
    response.headers["x-request-id"] = request_id
    return response


def _etag(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _not_modified(etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match matches with the weak comparison, `*` matches anything."""
    header = _request().headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return "*" in tags or etag in tags


def single_resource(body: dict[str, Any]) -> Response:
    """A 200 with an ETag, or a bodiless 304 when the caller already holds this version."""
    etag = _etag(body)
    if _not_modified(etag):
        return Response(body="", status_code=304, headers={"ETag": etag})
    return Response(body=body, status_code=200, headers={"Content-Type": "application/json", "ETag": etag})


def portal_route(
    path: str, methods: list[str] | None = None
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A route (GET unless `methods` says otherwise) that authenticates the caller and turns typed errors into problem responses."""

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(view)
        def handle(**params: str) -> Response:
            request_id = _request_id()
            # A warm function serves many callers: no key of the previous request may linger.
            logger.append_keys(tenant=None, customer=None, correlation_id=request_id)
            try:
                caller = authenticate_request(_auth_ports(), _request().headers, request_id)
                logger.append_keys(tenant=caller.tenant_id, customer=caller.customer_id)
                # Counted once the caller is known: a request without valid credentials is a
                # 401 and spends no tenant's allowance.
                decision = _admit(caller)
                # From here on, data access acts for the caller's tenant only (STS session).
                with scope.acting_for(caller.tenant_id):
                    response = view(caller, **params)
                return _with_request_id(_rate_headers(response, decision), request_id)
            except RateLimited as error:
                logger.info("request refused", extra={"reason": error.reason, "path": path})
                response = _rate_headers(_problem_for(error), error.decision)
                response.headers["Retry-After"] = str(error.decision.retry_after)
                return _with_request_id(response, request_id)
            except HemeraError as error:
                logger.info("request refused", extra={"reason": error.reason, "path": path})
                return _with_request_id(_problem_for(error), request_id)

        app.route(path, methods=methods or ["GET"])(handle)
        return handle

    return decorate


@app.route("/v1/health", methods=["GET"])
def health() -> Response:
    return _with_request_id(json_response({"status": "ok"}), _request_id())


def _query() -> Mapping[str, str]:
    return _request().query_params or {}


def _version() -> int | None:
    """`version=N`: an earlier data version of a (one-day) load profile."""
    raw = _query().get("version")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidQuery(f"version={raw!r} is not a data version (1, 2, …)")
    return int(raw)


def _limit() -> int | None:
    raw = _query().get("limit")
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidQuery(f"limit={raw!r} is not a whole number")
    return int(raw)


def customer_document(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "load_class": customer.load_class,
        "tax_id": customer.tax_id,
        "reading_day": customer.reading_day,
    }


def meter_document(meter: Meter) -> dict[str, Any]:
    return {
        "id": meter.id,
        "customer_id": meter.customer_id,
        "rtu_id": meter.device_id,
        "model": meter.model,
        "protocol": meter.protocol,
        "multiplier": number(meter.multiplier),
        "nmi": meter.nmi,
        "serial": meter.serial,
    }


def page_document(page: Page[Any], document: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {"items": [document(item) for item in page.items], "next_cursor": page.next_cursor}


@portal_route("/v1/customers")
def get_customers(caller: Caller) -> Response:
    page = list_customers(_ports().registry, caller, _query().get("cursor"), _limit())
    return json_response(page_document(page, customer_document))


@portal_route("/v1/customers/{customer_id}")
def get_customer(caller: Caller, customer_id: str) -> Response:
    return single_resource(customer_document(owned_customer(_ports().registry, caller, customer_id)))


@portal_route("/v1/meters")
def get_meters(caller: Caller) -> Response:
    query = _query()
    page = list_meters(_ports().registry, caller, query.get("cursor"), _limit(), query.get("customer_id"))
    return json_response(page_document(page, meter_document))


@portal_route("/v1/meters/{meter_id}")
def get_meter(caller: Caller, meter_id: str) -> Response:
    return single_resource(meter_document(owned_meter(_ports().registry, caller, meter_id)))


@portal_route("/v1/meters/{meter_id}/load-profile")
def get_load_profile(caller: Caller, meter_id: str) -> Response:
    query = _query()
    ports = _ports()
    tenant = ports.registry.get_tenant(caller.ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {caller.tenant_id} is not registered")
    if "from" not in query:
        raise InvalidQuery("from is required (a date or an ISO-8601 time with offset)")
    start = parse_instant(query["from"], tenant.zone, "from")
    end = parse_instant(query["to"], tenant.zone, "to") if "to" in query else start + timedelta(days=1)
    as_csv = wants_csv(_request().headers.get("accept"), query.get("format"))
    # The final (VEE'd) days where VEE has computed them, else the stored meter data (`edits`).
    channel, version = query.get("channel", "active_import"), _version()
    profile = final_load_profile(ports, edits.final_series(), caller, meter_id, channel, start, end, version)
    logger.info("load profile served", extra={"meter": meter_id, "intervals": len(profile.intervals)})
    if as_csv:
        name = f"{profile.meter_id}_{profile.channel.value}_{start.date().isoformat()}.csv"
        return csv_response(load_profile_csv(profile), name)
    return json_response(load_profile_document(profile))


# Consumption, demand and power factor: computed from the stored series (chalicelib/meter_data.py).
meter_data.register(portal_route, _ports, _query)
# Instantaneous values stored from the agent's instantaneous frames (chalicelib/instantaneous.py).
instantaneous.register(portal_route, _ports, lambda: instantaneous_store(scope.settings()), _query)
# Commands to a meter's RTU and their audit trail (chalicelib/commands.py).
commands.register(portal_route, _ports, _query, _request, _limit, page_document)
# Operators' interval edits, re-validated at once into a new data version (chalicelib/edits.py).
edits.register(portal_route, _ports, _request)
# Billing determinants of a period from the final (VEE'd) series (chalicelib/billing.py).
billing.register(portal_route, _ports, lambda: final_series_store(scope.settings()), _query)
# Alarms: list, acknowledge, and a meter's theft/tamper suspicion score (chalicelib/alarms.py).
alarms.register(portal_route, _ports, _query, _request, _limit, page_document)
# Billing exports (list, read with download URLs, request) and Green Button (chalicelib/exports.py).
exports.register(portal_route, _ports, _query, _request, _limit, page_document)
# Device events and outages of a meter, and the tenant's outages (chalicelib/events.py).
events.register(portal_route, _ports, _query)
