"""Routes of billing exports (contract: `api_spec/openapi.yaml`): list a tenant's exports (newest
period first, pending ones too), read one with its state and pre-signed download URLs of every
version's files, request one on demand (admins and operators: `202`, rendered by the billing
function), and one meter's Green Button (ESPI) download.

Exports hold every meter of a tenant: only tenant-wide callers see them (a customer-scoped caller
lists none and gets 404 for any id). Registered through the app's `portal_route`, so the caller
is resolved and typed errors mapped exactly like every other route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from chalice.app import Request, Response

from hemera.domain.errors import InvalidQuery
from hemera.observability import logger
from hemera.ports import Page
from hemera.ports.exports import Export, ExportVersion
from hemera.services import exports
from hemera.services.access import Caller, PortalPorts
from hemera.wiring import export_ports, export_requests

from . import scope
from .commands import requester
from .http import json_object, json_response, required, utc_time

View = Callable[..., Response]
Route = Callable[..., Callable[[View], View]]

ATOM_XML = "application/atom+xml"


def _ports() -> exports.ExportPorts:
    # Items and objects through the caller's tenant session; `ExportRequested` with the API's own
    # role (a tenant session reaches only the tenant's items and objects, not the bus).
    return replace(export_ports(scope.settings()), requests=export_requests(scope.base_settings()))


def version_document(version: ExportVersion, url: Callable[[str, str], str] | None = None) -> dict[str, Any]:
    """One version; with `url` (key, file name → pre-signed URL) its files are downloadable."""
    files = []
    for f in version.files:
        entry: dict[str, Any] = {
            "name": f.name,
            "format": f.format,
            "content_type": f.content_type,
            "sha256": f.sha256,
            "size": f.size,
            "rows": f.rows,
            "totals": {k: str(v) for k, v in sorted(f.totals.items())},
        }
        if url is not None:
            entry["download_url"] = url(f.key, f.name)
        files.append(entry)
    document: dict[str, Any] = {
        "version": version.version,
        "created_at": utc_time(version.created_at),
        "reason": version.reason,
        "files": files,
        "diff": [exports.diff_document(d) for d in version.diff],
    }
    if url is not None:
        document["manifest_url"] = url(version.manifest_key, "manifest.json")
    return document


def export_document(export: Export, url: Callable[[str, str], str] | None = None) -> dict[str, Any]:
    created = export.requested_at or export.versions[0].created_at
    return {
        "id": export.id,
        "state": export.state.value,
        "failure": export.failure,
        "formats": list(export.formats),
        "period_start": export.period_start.isoformat(),
        "period_end": export.period_end.isoformat(),
        "schedule_id": export.schedule_id,
        "requested_by": export.requested_by,
        "meters": list(export.meters),
        "latest_version": export.latest_version,
        "created_at": utc_time(created),
        "versions": [version_document(v, url) for v in export.versions],
    }


def _body(request: Request) -> dict[str, Any]:
    return json_object(request, InvalidQuery, '{"format": "csv", "period": "2026-10"}')


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidQuery(f"{name}={value!r} is not a date like 2026-10-01") from exc


def register(
    route: Route,
    portal: Callable[[], PortalPorts],
    query: Callable[[], Mapping[str, str]],
    request: Callable[[], Request],
    limit: Callable[[], int | None],
    page_document: Callable[[Page[Any], Callable[[Any], dict[str, Any]]], dict[str, Any]],
) -> None:
    """Add the routes to the app whose `portal_route` is `route`."""

    @route("/v1/exports")
    def get_exports(caller: Caller) -> Response:
        page = exports.list_exports(_ports(), caller, query().get("cursor"), limit())
        return json_response(page_document(page, export_document))

    @route("/v1/exports", methods=["POST"])
    def post_export(caller: Caller) -> Response:
        req = request()
        body = _body(req)
        by = requester(portal(), req.headers, caller)
        export = exports.request_export(_ports(), caller, by, body, datetime.now(UTC))
        logger.info(
            "export requested",
            extra={"export": export.id, "formats": list(export.formats), "meters": len(export.meters)},
        )
        # Accepted: the billing function renders it; GET the Location until it is ready.
        response = json_response(export_document(export), status=202)
        response.headers["Location"] = f"/v1/exports/{export.id}"
        return response

    @route("/v1/exports/{export_id}")
    def get_export(caller: Caller, export_id: str) -> Response:
        export = exports.get_export(_ports(), caller, export_id)
        return json_response(export_document(export, _signer(caller)))

    @route("/v1/meters/{meter_id}/green-button")
    def get_green_button(caller: Caller, meter_id: str) -> Response:
        q = query()
        first = _day(required(q, "from", "a date, the first day"), "from")
        end = _day(required(q, "to", "a date, the day after the last"), "to")
        file = exports.green_button(_ports(), caller, meter_id, first, end, datetime.now(UTC))
        logger.info("green button served", extra={"meter": meter_id, "readings": file.rows})
        headers: dict[str, str | list[str]] = {
            "Content-Type": ATOM_XML,
            "Content-Disposition": f'attachment; filename="{file.name}"',
        }
        return Response(body=file.content.decode("utf-8"), status_code=200, headers=headers)


def _signer(caller: Caller) -> Callable[[str, str], str]:
    def url(key: str, name: str) -> str:
        return _ports().files.download_url(caller.ctx, key, name, exports.DOWNLOAD_URL_SECONDS)

    return url
