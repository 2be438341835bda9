"""Port of the device event log and the outages derived from it (written by translate, read by
VEE, alarms and the portal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.meter_events import MeterEvent, Outage, Subject
from hemera.domain.tenancy import TenantContext


class MeterEventLog(Protocol):
    def events(
        self, ctx: TenantContext, subject: Subject, subject_id: str, start: datetime, end: datetime
    ) -> list[MeterEvent]:
        """Events of one meter or RTU with start ≤ at < end, in time order."""
        ...

    def outages(self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime) -> list[Outage]:
        """Outages of one meter overlapping [start, end), in start order (an open one included)."""
        ...


class MeterEventStore(MeterEventLog, Protocol):
    def record(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        """Store events idempotently (by `event_id`); returns those that were new."""
        ...

    def save_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None:
        """Create or update outages (identity: meter and start)."""
        ...
