"""Port of operators' interval edits (`POST /v1/meters/{id}/edits` writes them; VEE reads them
when it recomputes the local day they fall in). Edits are never deleted: a later edit of the same
interval supersedes an earlier one in VEE, and both stay for the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import IntervalEdit


class EditLog(Protocol):
    def edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalEdit]:
        """Edits of one meter and channel whose interval starts in [start, end), ordered by
        interval start and then by when they were made."""
        ...


class EditStore(EditLog, Protocol):
    def add_edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, edits: Sequence[IntervalEdit]
    ) -> None:
        """Record edits (identity: interval start and time made; recording one again is harmless)."""
        ...
