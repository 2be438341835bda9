"""Routes of meter commands (contract: `api_spec/openapi.yaml`): request one (admin/operator),
list a meter's commands (newest first, cursor pages) and read one with its audit trail.

Registered through the app's `portal_route`, so the caller is resolved and typed errors mapped
exactly like every other route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalice.app import Request, Response

from hemera.domain.commands import InvalidCommandRequest, MeterCommand
from hemera.observability import logger
from hemera.ports import Page
from hemera.services import commands
from hemera.services.access import Caller, PortalPorts
from hemera.wiring import command_ports, command_publisher

from . import scope
from .http import json_object, json_response, utc_time

View = Callable[..., Response]
Route = Callable[..., Callable[[View], View]]


def _ports() -> commands.CommandPorts:
    """The tenant's data through its session; the command to the RTU with the API's own role,
    which may publish to IoT Core (a tenant session may not)."""
    return replace(command_ports(scope.settings()), publisher=command_publisher(scope.base_settings()))


def command_document(command: MeterCommand) -> dict[str, Any]:
    return {
        "id": command.id,
        "meter_id": command.meter_id,
        "rtu_id": command.device_id,
        "kind": command.kind.value,
        "params": command.params,
        "status": command.status.value,
        "requested_by": command.requested_by,
        "requester_role": command.requester_role,
        "requested_at": utc_time(command.requested_at),
        "sent_at": utc_time(command.sent_at),
        "closed_at": utc_time(command.closed_at),
        "ack": {"status": command.ack_status, "result": command.ack_result} if command.ack_status else None,
        "detail": command.detail,
    }


def requester(portal: PortalPorts, headers: Mapping[str, str], caller: Caller) -> str:
    """Who asked, for the audit trail: the Cognito user name (from the token already verified
    for this request), or the fingerprint of the API key (never the key)."""
    authorization = headers.get("authorization")
    if authorization is not None and portal.tokens is not None:
        claims = portal.tokens.claims(authorization.partition(" ")[2].strip())
        return f"user:{claims.get('cognito:username') or claims.get('username') or claims.get('sub')}"
    key = headers.get("x-api-key", "")
    return f"key:{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _body(request: Request) -> dict[str, Any]:
    return json_object(request, InvalidCommandRequest, '{"kind": …, "params": {…}}')


def register(
    route: Route,
    portal: Callable[[], PortalPorts],
    query: Callable[[], Mapping[str, str]],
    request: Callable[[], Request],
    limit: Callable[[], int | None],
    page_document: Callable[[Page[Any], Callable[[Any], dict[str, Any]]], dict[str, Any]],
) -> None:
    """Add the routes to the app whose `portal_route` is `route`."""

    @route("/v1/meters/{meter_id}/commands", methods=["POST"])
    def post_command(caller: Caller, meter_id: str) -> Response:
        req = request()
        body = _body(req)
        by = requester(portal(), req.headers, caller)
        command = commands.request_command(_ports(), caller, by, meter_id, body, datetime.now(UTC))
        logger.info(
            "command requested",
            extra={
                "meter": meter_id,
                "command": command.id,
                "kind": command.kind.value,
                "status": command.status,
            },
        )
        response = json_response(command_document(command), status=201)
        response.headers["Location"] = f"/v1/meters/{meter_id}/commands/{command.id}"
        return response

    @route("/v1/meters/{meter_id}/commands")
    def get_commands(caller: Caller, meter_id: str) -> Response:
        page = commands.list_commands(_ports(), caller, meter_id, query().get("cursor"), limit())
        return json_response(page_document(page, command_document))

    @route("/v1/meters/{meter_id}/commands/{command_id}")
    def get_command(caller: Caller, meter_id: str, command_id: str) -> Response:
        return json_response(command_document(commands.get_command(_ports(), caller, meter_id, command_id)))
