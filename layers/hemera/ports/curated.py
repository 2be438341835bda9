"""Port of the curated dataset: Parquet objects per tenant and UTC day (see `hemera.domain.curated`).

Adapters: `hemera.adapters.parquet.S3ParquetCuratedWriter` (pyarrow, S3) and the in-memory fake
`hemera.adapters.curated_memory.MemoryCuratedWriter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from hemera.domain.curated import CuratedRow
from hemera.domain.tenancy import TenantContext


class CuratedWriter(Protocol):
    def write(self, ctx: TenantContext, day: date, batch_id: str, rows: Sequence[CuratedRow]) -> str:
        """Store the rows of one tenant's UTC day as one object of the day's partition, named by
        `batch_id` (writing the same batch id again replaces the object); returns its key."""
        ...
