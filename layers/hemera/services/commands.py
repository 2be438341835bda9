"""Meter commands: request one (operators and admins), publish it to the meter's RTU, keep its
audit trail, and close it from the RTU's ack (see `hemera.domain.commands` for the states).

Access: every caller who reaches a meter (`owned_meter`) may read its commands; only a tenant
admin or operator may request one. A foreign meter is 404 (CommandNotFound/MeterNotFound) before
the role is looked at, so a 403 (CommandForbidden) only ever tells a caller about its own meter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hemera.domain.commands import (
    ACK_DEADLINE,
    AckDeviceMismatch,
    CommandForbidden,
    CommandKind,
    CommandNotFound,
    CommandStatus,
    InvalidCommandRequest,
    MeterCommand,
    apply_ack,
    expire,
    mark_sent,
    mark_undelivered,
    new_command_id,
    parse_ack,
    parse_kind,
    validate_params,
)
from hemera.domain.errors import ConcurrentUpdate, InvalidTenantId
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.ports import Page, Registry
from hemera.ports.commands import CommandPublisher, CommandStore
from hemera.services.access import Caller, Role, decode_cursor, encode_cursor, owned_meter, page_size

COMMANDING_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


@dataclass(frozen=True, slots=True)
class CommandPorts:
    registry: Registry
    commands: CommandStore
    publisher: CommandPublisher


def request_command(
    ports: CommandPorts,
    caller: Caller,
    requested_by: str,
    meter_id: str,
    body: Mapping[str, object],
    now: datetime,
    new_id: Callable[[datetime], str] = new_command_id,
) -> MeterCommand:
    """Record a command for the caller's meter, publish it to the meter's RTU and return it:
    `sent` when the broker took it, `failed` when it could not be published."""
    meter = owned_meter(ports.registry, caller, meter_id)
    if caller.role not in COMMANDING_ROLES:
        raise CommandForbidden(f"a {caller.role.value} may read commands but not request them")
    unknown = set(body) - {"kind", "params"}
    if unknown:
        raise InvalidCommandRequest(f"unknown fields {sorted(unknown)}; a command has kind and params")
    kind = parse_kind(body.get("kind"))
    params = validate_params(kind, body.get("params"))
    return issue_command(ports, caller.ctx, meter, kind, params, requested_by, caller.role.value, now, new_id)


def issue_command(
    ports: CommandPorts,
    ctx: TenantContext,
    meter: Meter,
    kind: CommandKind,
    params: dict[str, Any],
    requested_by: str,
    requester_role: str,
    now: datetime,
    new_id: Callable[[datetime], str] = new_command_id,
) -> MeterCommand:
    """Record a command (validated `params`) for `meter`, publish it to the meter's RTU and return
    it: `sent` when the broker took it, `failed` when it could not be published. The API asks on
    behalf of a caller; the platform's sweeps (re-reads) on their own (`requester_role` system)."""
    command = MeterCommand(
        tenant_id=ctx.tenant_id,
        id=new_id(now),
        meter_id=meter.id,
        device_id=meter.device_id,
        kind=kind,
        params=params,
        requested_by=requested_by,
        requester_role=requester_role,
        requested_at=now,
    )
    # Recorded before it is published: the audit trail holds every command that may have left.
    ports.commands.create(ctx, command)
    payload = json.dumps(command.agent_payload(), separators=(",", ":")).encode()
    try:
        ports.publisher.publish(command.topic, payload)
    except Exception as exc:  # any failure of the transport means: not delivered
        failed = mark_undelivered(command, now, f"not delivered to the RTU: {type(exc).__name__}")
        ports.commands.update(ctx, failed, CommandStatus.REQUESTED)
        return failed
    sent = mark_sent(command, now)
    ports.commands.update(ctx, sent, CommandStatus.REQUESTED)
    return sent


def expire_overdue(
    commands: CommandStore, ctx: TenantContext, now: datetime, limit: int = 500
) -> list[MeterCommand]:
    """Mark the tenant's sent commands that outlived their ack deadline `expired` (a later ack
    still closes them); returns those it expired. A command an ack closed meanwhile is left."""
    expired = []
    for command in commands.open_commands(ctx, limit):
        if command.status is not CommandStatus.SENT or command.sent_at is None:
            continue
        if now - command.sent_at < ACK_DEADLINE:
            continue
        try:
            commands.update(ctx, expire(command, now), CommandStatus.SENT)
        except ConcurrentUpdate:
            continue  # its ack arrived between the read and the write
        expired.append(command)
    return expired


def get_command(ports: CommandPorts, caller: Caller, meter_id: str, command_id: str) -> MeterCommand:
    meter = owned_meter(ports.registry, caller, meter_id)
    try:
        command = ports.commands.get(caller.ctx, meter.id, command_id)
    except InvalidTenantId as exc:
        raise CommandNotFound(f"command {command_id!r} not found") from exc
    if command is None:
        raise CommandNotFound(f"command {command_id!r} not found")
    return command


def list_commands(
    ports: CommandPorts, caller: Caller, meter_id: str, cursor: str | None, limit: int | None
) -> Page[MeterCommand]:
    """The meter's commands, newest first."""
    meter = owned_meter(ports.registry, caller, meter_id)
    page = ports.commands.list(caller.ctx, meter.id, decode_cursor(cursor), page_size(limit))
    return Page(page.items, encode_cursor(page.next_cursor))


def record_ack(commands: CommandStore, tenant_id: str, device_id: str, payload: bytes) -> MeterCommand | None:
    """Close a command from its RTU's ack, published on `hemera/<tenant_id>/<device_id>/up/cmd-ack`
    (the topic is the device's authenticated identity). None if the tenant has no such command;
    MalformedAck / AckDeviceMismatch for an ack that must be refused."""
    ack = parse_ack(payload)
    ctx = TenantContext(tenant_id)
    try:
        command = commands.find(ctx, ack.id)
    except InvalidTenantId:
        return None  # an id we never issue
    if command is None:
        return None
    if command.device_id != device_id:
        raise AckDeviceMismatch(f"ack for {command.id} from {device_id}, sent to {command.device_id}")
    closed = apply_ack(command, ack, device_id)
    if closed != command:
        commands.update(ctx, closed, command.status)
    return closed
