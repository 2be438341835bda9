"""In-memory interval edits (tests); same contract as `hemera.adapters.edits_dynamodb`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import IntervalEdit


class MemoryEdits:
    def __init__(self) -> None:
        self._edits: dict[tuple[str, str, Channel, datetime, datetime], IntervalEdit] = {}

    def add_edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, edits: Sequence[IntervalEdit]
    ) -> None:
        for edit in edits:
            self._edits[(ctx.tenant_id, meter_id, channel, edit.start, edit.at)] = edit

    def edits(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalEdit]:
        found = [
            edit
            for (tenant, meter, chan, at_start, _), edit in self._edits.items()
            if tenant == ctx.tenant_id and meter == meter_id and chan == channel and start <= at_start < end
        ]
        return sorted(found, key=lambda e: (e.start, e.at))
