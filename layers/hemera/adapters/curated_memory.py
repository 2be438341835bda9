"""In-memory fake of the curated dataset: objects by key, each the rows it was written with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from hemera.definitions import CURATED_INTERVALS
from hemera.domain.curated import CuratedRow, curated_object_key
from hemera.domain.tenancy import TenantContext


class MemoryCuratedWriter:
    def __init__(self, prefix: str = CURATED_INTERVALS.prefix) -> None:
        self._prefix = prefix
        self.objects: dict[str, list[CuratedRow]] = {}

    def write(self, ctx: TenantContext, day: date, batch_id: str, rows: Sequence[CuratedRow]) -> str:
        key = curated_object_key(self._prefix, ctx.tenant_id, day, batch_id)
        self.objects[key] = list(rows)
        return key
