"""In-memory device event log and outages (tests and the fakes of other capabilities); same
contract as the DynamoDB adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hemera.domain.meter_events import MeterEvent, Outage, Subject
from hemera.domain.tenancy import TenantContext


class MemoryMeterEvents:
    def __init__(self) -> None:
        self._events: dict[str, dict[str, MeterEvent]] = {}
        self._outages: dict[str, dict[tuple[str, datetime], Outage]] = {}

    def record(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        stored = self._events.setdefault(ctx.tenant_id, {})
        new = [e for e in events if e.event_id not in stored]
        for event in new:
            stored[event.event_id] = event
        return new

    def events(
        self, ctx: TenantContext, subject: Subject, subject_id: str, start: datetime, end: datetime
    ) -> list[MeterEvent]:
        found = [
            e
            for e in self._events.get(ctx.tenant_id, {}).values()
            if e.subject == subject and e.subject_id == subject_id and start <= e.at < end
        ]
        return sorted(found, key=lambda e: (e.at, e.type.value))

    def save_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None:
        stored = self._outages.setdefault(ctx.tenant_id, {})
        for outage in outages:
            stored[(outage.meter_id, outage.start)] = outage

    def outages(self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime) -> list[Outage]:
        found = [
            o
            for (meter, _), o in self._outages.get(ctx.tenant_id, {}).items()
            if meter == meter_id and o.covers(start, end)
        ]
        return sorted(found, key=lambda o: o.start)
