"""Ports of meter commands: where they are kept (with their audit trail) and how they reach the RTU.

Adapters: `hemera.adapters.commands_dynamodb.DynamoCommandStore` (readings table, tenant-first keys
`T#<tenant>#M#<meter>` / `CMD#<id>`), `hemera.adapters.commands_iot.IotDataPublisher` (IoT Core
publish) and the in-memory fakes of `hemera.adapters.commands_memory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hemera.domain.commands import CommandStatus, MeterCommand
from hemera.domain.tenancy import TenantContext
from hemera.ports import Page


class CommandStore(Protocol):
    def create(self, ctx: TenantContext, command: MeterCommand) -> None:
        """Store a new command (its id must not exist yet)."""
        ...

    def update(self, ctx: TenantContext, command: MeterCommand, expected: CommandStatus) -> None:
        """Replace a stored command, only if it is still `expected` (else ConcurrentUpdate)."""
        ...

    def get(self, ctx: TenantContext, meter_id: str, command_id: str) -> MeterCommand | None: ...

    def find(self, ctx: TenantContext, command_id: str) -> MeterCommand | None:
        """A command of the tenant by id alone (an ack names only the id)."""
        ...

    def list(self, ctx: TenantContext, meter_id: str, cursor: str | None, limit: int) -> Page[MeterCommand]:
        """The meter's commands, newest first, after `cursor` (a command id), at most `limit`."""
        ...

    def open_commands(self, ctx: TenantContext, limit: int) -> Sequence[MeterCommand]:
        """The tenant's commands still waiting for their RTU (requested or sent), oldest first,
        at most `limit` (the expiry sweep's work list)."""
        ...


class CommandPublisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None:
        """Deliver one command document to an RTU's topic (MQTT QoS 1); raises if not accepted."""
        ...
