"""In-memory fake of `InstantaneousStore`, with the DynamoDB adapter's semantics (one reading per
meter and capture second, newest first)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hemera.domain.instantaneous import InstantaneousReading, capture_key
from hemera.domain.tenancy import TenantContext


class MemoryInstantaneousStore:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], InstantaneousReading] = {}

    def put(self, ctx: TenantContext, readings: Sequence[InstantaneousReading]) -> None:
        for reading in readings:
            key = (ctx.tenant_id, reading.meter_id, capture_key(reading.captured_at))
            self._items[key] = reading

    def newest_first(
        self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime, limit: int
    ) -> list[InstantaneousReading]:
        low, high = capture_key(start), capture_key(end)
        found = [
            (key[2], reading)
            for key, reading in self._items.items()
            if key[:2] == (ctx.tenant_id, meter_id) and low <= key[2] < high
        ]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [reading for _, reading in found[:limit]]
