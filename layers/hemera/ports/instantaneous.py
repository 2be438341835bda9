"""Port of the instantaneous values (V, I, P, Q, PF, frequency) of the meters, one item per meter
and capture time.

Adapters: `hemera.adapters.instantaneous_dynamodb.DynamoInstantaneousStore` (the readings table)
and the in-memory fake `hemera.adapters.instantaneous_memory.MemoryInstantaneousStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.instantaneous import InstantaneousReading
from hemera.domain.tenancy import TenantContext


class InstantaneousStore(Protocol):
    def put(self, ctx: TenantContext, readings: Sequence[InstantaneousReading]) -> None:
        """Store readings; a reading of the same meter and capture second replaces the stored one
        (a redelivered envelope writes the same item again)."""
        ...

    def newest_first(
        self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime, limit: int
    ) -> list[InstantaneousReading]:
        """At most `limit` readings captured in `[start, end)`, newest first."""
        ...
