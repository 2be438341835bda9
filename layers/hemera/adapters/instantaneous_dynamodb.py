"""Instantaneous values in the readings table (pynamodb), tenant-first like every item there:
`T#<tenant>#M#<meter>` / `INST#<capture time, UTC ISO 8601 to the second>`, so a meter's readings
of a time range are one Query, newest first. A redelivered envelope puts the same item again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.instantaneous import InstantaneousReading, Quantity, capture_key
from hemera.domain.tenancy import TenantContext

INSTANTANEOUS_SK_PREFIX = "INST#"


class InstantaneousRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#M#<meter>
    sk = UnicodeAttribute(range_key=True)  # INST#<capture time>
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    captured_at = UnicodeAttribute()
    values = UnicodeAttribute()  # JSON object: quantity -> decimal as a string (exact)


@cache
def instantaneous_model(table_name: str, target: AwsTarget, host: str | None) -> type[InstantaneousRecord]:
    return bind_model(InstantaneousRecord, table_name, target, host)


class DynamoInstantaneousStore:
    def __init__(self, record: type[InstantaneousRecord]) -> None:
        self._record = record

    def put(self, ctx: TenantContext, readings: Sequence[InstantaneousReading]) -> None:
        with self._record.batch_write() as batch:
            for reading in readings:
                batch.save(
                    self._record(
                        ctx.meter_pk(reading.meter_id),
                        INSTANTANEOUS_SK_PREFIX + capture_key(reading.captured_at),
                        tenant=ctx.tenant_id,
                        meter=reading.meter_id,
                        captured_at=capture_key(reading.captured_at),
                        values=json.dumps(
                            {q.value: str(v) for q, v in reading.values.items()}, sort_keys=True
                        ),
                    )
                )

    def newest_first(
        self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime, limit: int
    ) -> list[InstantaneousReading]:
        low = INSTANTANEOUS_SK_PREFIX + capture_key(start)
        high = INSTANTANEOUS_SK_PREFIX + capture_key(end)
        readings: list[InstantaneousReading] = []
        for record in self._record.query(
            ctx.meter_pk(meter_id),
            self._record.sk.between(low, high),
            scan_index_forward=False,
        ):
            if record.sk == high:  # `between` is inclusive; the range is half-open
                continue
            readings.append(_reading(record))
            if len(readings) == limit:
                break
        return readings


def _reading(record: InstantaneousRecord) -> InstantaneousReading:
    values = {Quantity(q): Decimal(v) for q, v in json.loads(record.values).items()}
    return InstantaneousReading(record.meter, datetime.fromisoformat(record.captured_at), values)
