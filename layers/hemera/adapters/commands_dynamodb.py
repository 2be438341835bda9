"""Meter commands in the readings table (pynamodb), tenant-first like every item there:

- the command and its audit trail: `T#<tenant>#M#<meter>` / `CMD#<id>` — the ids are time-ordered,
  so a meter's commands list newest first with one Query;
- a pointer by id, for the ack (which names only the id): `T#<tenant>#INDEX` / `CMD#<id>` → meter;
- while the RTU has not answered, an open-command pointer: `T#<tenant>#OPENCMD` / `CMD#<id>` →
  meter, deleted when the command closes or expires (the expiry sweep reads only these).

Commands carry no `expires_at`: the audit trail is kept (the table's TTL never touches them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.commands import CommandKind, CommandStatus, MeterCommand
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page

COMMAND_SK_PREFIX = "CMD#"
_OPEN = frozenset({CommandStatus.REQUESTED, CommandStatus.SENT})


def _open_pk(ctx: TenantContext) -> str:
    return ctx.key_prefix + "OPENCMD"


class CommandRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#M#<meter>
    sk = UnicodeAttribute(range_key=True)  # CMD#<command id>
    tenant = UnicodeAttribute()
    command = UnicodeAttribute()
    meter = UnicodeAttribute()
    device = UnicodeAttribute()
    kind = UnicodeAttribute()
    params = UnicodeAttribute()  # JSON
    requested_by = UnicodeAttribute()
    requester_role = UnicodeAttribute()
    requested_at = UnicodeAttribute()
    status = UnicodeAttribute()
    sent_at = UnicodeAttribute(null=True)
    closed_at = UnicodeAttribute(null=True)
    ack_status = UnicodeAttribute(null=True)
    ack_result = UnicodeAttribute(null=True)  # JSON
    detail = UnicodeAttribute(null=True)


class CommandPointerRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#INDEX
    sk = UnicodeAttribute(range_key=True)  # CMD#<command id>
    meter = UnicodeAttribute()


@cache
def command_models(
    table_name: str, target: AwsTarget, host: str | None
) -> tuple[type[CommandRecord], type[CommandPointerRecord]]:
    return (
        bind_model(CommandRecord, table_name, target, host),
        bind_model(CommandPointerRecord, table_name, target, host),
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


class DynamoCommandStore:
    def __init__(self, models: tuple[type[CommandRecord], type[CommandPointerRecord]]) -> None:
        self._record, self._pointer = models

    def _to_record(self, ctx: TenantContext, command: MeterCommand) -> CommandRecord:
        return self._record(
            ctx.meter_pk(command.meter_id),
            COMMAND_SK_PREFIX + validate_id(command.id, "command"),
            tenant=ctx.tenant_id,
            command=command.id,
            meter=command.meter_id,
            device=command.device_id,
            kind=command.kind.value,
            params=json.dumps(command.params, sort_keys=True),
            requested_by=command.requested_by,
            requester_role=command.requester_role,
            requested_at=command.requested_at.isoformat(),
            status=command.status.value,
            sent_at=_time(command.sent_at),
            closed_at=_time(command.closed_at),
            ack_status=command.ack_status,
            ack_result=json.dumps(command.ack_result, sort_keys=True) if command.ack_result else None,
            detail=command.detail,
        )

    @staticmethod
    def _command(record: CommandRecord) -> MeterCommand:
        requested_at = _parse(record.requested_at)
        assert requested_at is not None
        return MeterCommand(
            tenant_id=record.tenant,
            id=record.command,
            meter_id=record.meter,
            device_id=record.device,
            kind=CommandKind(record.kind),
            params=json.loads(record.params),
            requested_by=record.requested_by,
            requester_role=record.requester_role,
            requested_at=requested_at,
            status=CommandStatus(record.status),
            sent_at=_parse(record.sent_at),
            closed_at=_parse(record.closed_at),
            ack_status=record.ack_status,
            ack_result=json.loads(record.ack_result) if record.ack_result else {},
            detail=record.detail,
        )

    def create(self, ctx: TenantContext, command: MeterCommand) -> None:
        if command.tenant_id != ctx.tenant_id:
            raise ValueError("a command is stored only under its own tenant")
        record = self._to_record(ctx, command)
        pointer = self._pointer(ctx.index_pk(), COMMAND_SK_PREFIX + command.id, meter=command.meter_id)
        try:
            # The pointer first: a pointer without its command only makes an ack find nothing.
            pointer.save(condition=self._pointer.pk.does_not_exist())
            if command.status in _OPEN:
                self._open_pointer(ctx, command).save()
            record.save(condition=self._record.pk.does_not_exist())
        except PutError as exc:
            raise ConcurrentUpdate(f"command {command.id} exists") from exc

    def _open_pointer(self, ctx: TenantContext, command: MeterCommand) -> CommandPointerRecord:
        return self._pointer(_open_pk(ctx), COMMAND_SK_PREFIX + command.id, meter=command.meter_id)

    def update(self, ctx: TenantContext, command: MeterCommand, expected: CommandStatus) -> None:
        try:
            self._to_record(ctx, command).save(condition=self._record.status == expected.value)
        except PutError as exc:
            raise ConcurrentUpdate(f"command {command.id} is no longer {expected.value}") from exc
        if command.status not in _OPEN:
            # After the command: a pointer left behind only makes the sweep look at a closed one.
            self._open_pointer(ctx, command).delete()

    def open_commands(self, ctx: TenantContext, limit: int) -> Sequence[MeterCommand]:
        pointers = self._pointer.query(
            _open_pk(ctx), self._pointer.sk.startswith(COMMAND_SK_PREFIX), limit=limit, page_size=limit
        )
        found = (self.get(ctx, p.meter, p.sk.removeprefix(COMMAND_SK_PREFIX)) for p in pointers)
        return [c for c in found if c is not None and c.status in _OPEN]

    def get(self, ctx: TenantContext, meter_id: str, command_id: str) -> MeterCommand | None:
        sk = COMMAND_SK_PREFIX + validate_id(command_id, "command")
        try:
            return self._command(self._record.get(ctx.meter_pk(meter_id), sk, consistent_read=True))
        except self._record.DoesNotExist:
            return None

    def find(self, ctx: TenantContext, command_id: str) -> MeterCommand | None:
        sk = COMMAND_SK_PREFIX + validate_id(command_id, "command")
        try:
            pointer = self._pointer.get(ctx.index_pk(), sk, consistent_read=True)
        except self._pointer.DoesNotExist:
            return None
        return self.get(ctx, pointer.meter, command_id)

    def list(self, ctx: TenantContext, meter_id: str, cursor: str | None, limit: int) -> Page[MeterCommand]:
        pk = ctx.meter_pk(meter_id)
        start = None
        if cursor is not None:
            start = {"pk": {"S": pk}, "sk": {"S": COMMAND_SK_PREFIX + validate_id(cursor, "cursor")}}
        records = list(
            self._record.query(
                pk,
                self._record.sk.startswith(COMMAND_SK_PREFIX),
                scan_index_forward=False,
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key=start,
            )
        )
        items = [self._command(r) for r in records[:limit]]
        return Page(items, items[-1].id if len(records) > limit else None)
