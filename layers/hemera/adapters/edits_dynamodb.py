"""Operators' interval edits in the readings table (pynamodb), tenant-first:
`T#<tenant>#M#<meter>` / `ED#<channel>#<interval start, UTC>#<made at, UTC>` — a meter's edits of
one local day are one Query on the sort-key range of that day's UTC span. Edits are kept (no TTL):
they are the audit trail of every edited value."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import IntervalEdit

# Fixed-width UTC times sort as text in time order.
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(_TIME)


def edit_sk_prefix(channel: Channel, start: datetime) -> str:
    return f"ED#{channel.value}#{_stamp(start)}#"


class EditRecord(Model):
    class Meta:
        table_name = "unbound"  # bound at cold start by `edit_model`

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#M#<meter>
    sk = UnicodeAttribute(range_key=True)  # ED#<channel>#<start>#<at>
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    channel = UnicodeAttribute()
    start = UnicodeAttribute()
    value = UnicodeAttribute()  # a decimal string: exact
    reason = UnicodeAttribute()
    user = UnicodeAttribute()
    at = UnicodeAttribute()


@cache
def edit_model(table_name: str, target: AwsTarget, host: str | None) -> type[EditRecord]:
    return bind_model(EditRecord, table_name, target, host)


class DynamoEdits:
    def __init__(self, model: type[EditRecord]) -> None:
        self._model = model

    def add_edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, edits: Sequence[IntervalEdit]
    ) -> None:
        pk = ctx.meter_pk(meter_id)
        with self._model.batch_write() as batch:
            for edit in edits:
                batch.save(
                    self._model(
                        pk,
                        edit_sk_prefix(channel, edit.start) + _stamp(edit.at),
                        tenant=ctx.tenant_id,
                        meter=meter_id,
                        channel=channel.value,
                        start=edit.start.astimezone(UTC).isoformat(),
                        value=str(edit.value),
                        reason=edit.reason,
                        user=edit.user,
                        at=edit.at.astimezone(UTC).isoformat(),
                    )
                )

    def edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalEdit]:
        # `#` sorts before every digit: the prefix of `end` bounds the range just below it.
        records = self._model.query(
            ctx.meter_pk(meter_id),
            self._model.sk.between(edit_sk_prefix(channel, start), edit_sk_prefix(channel, end)),
            consistent_read=True,
        )
        found = [
            IntervalEdit(
                start=datetime.fromisoformat(r.start),
                value=Decimal(r.value),
                reason=r.reason,
                user=r.user,
                at=datetime.fromisoformat(r.at),
            )
            for r in records
        ]
        return [e for e in found if start <= e.start < end]
