"""In-memory fakes of the command ports, with the semantics of the AWS adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hemera.domain.commands import CommandStatus, MeterCommand
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page


class MemoryCommandStore:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], MeterCommand] = {}

    def create(self, ctx: TenantContext, command: MeterCommand) -> None:
        key = (ctx.meter_pk(command.meter_id), ctx.tenant_id, validate_id(command.id, "command"))
        if command.tenant_id != ctx.tenant_id:
            raise ValueError("a command is stored only under its own tenant")
        if self.find(ctx, command.id) is not None:
            raise ConcurrentUpdate(f"command {command.id} exists")
        self._items[key] = command

    def update(self, ctx: TenantContext, command: MeterCommand, expected: CommandStatus) -> None:
        key = (ctx.meter_pk(command.meter_id), ctx.tenant_id, command.id)
        stored = self._items.get(key)
        if stored is None or stored.status is not expected:
            raise ConcurrentUpdate(f"command {command.id} is no longer {expected.value}")
        self._items[key] = command

    def get(self, ctx: TenantContext, meter_id: str, command_id: str) -> MeterCommand | None:
        return self._items.get((ctx.meter_pk(meter_id), ctx.tenant_id, validate_id(command_id, "command")))

    def find(self, ctx: TenantContext, command_id: str) -> MeterCommand | None:
        return next(
            (c for (_, t, i), c in self._items.items() if t == ctx.tenant_id and i == command_id), None
        )

    def open_commands(self, ctx: TenantContext, limit: int) -> Sequence[MeterCommand]:
        waiting = (CommandStatus.REQUESTED, CommandStatus.SENT)
        found = sorted(
            (c for (_, t, _), c in self._items.items() if t == ctx.tenant_id and c.status in waiting),
            key=lambda c: c.id,
        )
        return found[:limit]

    def list(self, ctx: TenantContext, meter_id: str, cursor: str | None, limit: int) -> Page[MeterCommand]:
        pk = ctx.meter_pk(meter_id)
        ids = sorted((i for (p, _, i) in self._items if p == pk), reverse=True)
        if cursor is not None:
            ids = [i for i in ids if i < cursor]
        page = [self._items[(pk, ctx.tenant_id, i)] for i in ids[:limit]]
        return Page(page, page[-1].id if len(ids) > limit else None)


@dataclass
class MemoryPublisher:
    """Keeps what was published; `fail_with` makes the next publishes raise it (broker down)."""

    published: list[tuple[str, bytes]] = field(default_factory=list)
    fail_with: Exception | None = None

    def publish(self, topic: str, payload: bytes) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append((topic, payload))
