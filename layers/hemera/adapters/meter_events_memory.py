"""In-memory device event log and outages (tests and the fakes of other capabilities); same
contract as the DynamoDB adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from hemera.domain.meter_events import MeterEvent, Outage, Subject
from hemera.domain.readings import Channel
from hemera.domain.registers import RegisterReading
from hemera.domain.tenancy import TenantContext


class MemoryMeterEvents:
    def __init__(self) -> None:
        self._events: dict[str, dict[str, MeterEvent]] = {}
        self._outages: dict[str, dict[tuple[str, datetime], Outage]] = {}

    def unseen(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        """The events not stored yet (translate announces them before it records them)."""
        stored = self._events.get(ctx.tenant_id, {})
        return list({e.event_id: e for e in events if e.event_id not in stored}.values())

    def record(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        stored = self._events.setdefault(ctx.tenant_id, {})
        new = list({e.event_id: e for e in events if e.event_id not in stored}.values())
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

    def discard_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None:
        """Delete outages a more trusted one replaced (identity: meter and start)."""
        stored = self._outages.setdefault(ctx.tenant_id, {})
        for outage in outages:
            stored.pop((outage.meter_id, outage.start), None)

    def outages(self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime) -> list[Outage]:
        found = [
            o
            for (meter, _), o in self._outages.get(ctx.tenant_id, {}).items()
            if meter == meter_id and o.covers(start, end)
        ]
        return sorted(found, key=lambda o: o.start)

    def tenant_outages(self, ctx: TenantContext, start: datetime, end: datetime) -> list[Outage]:
        """Every meter's outages overlapping [start, end), in start order."""
        found = [o for o in self._outages.get(ctx.tenant_id, {}).values() if o.covers(start, end)]
        return sorted(found, key=lambda o: (o.start, o.meter_id))


class MemoryRegisters:
    def __init__(self) -> None:
        self._readings: dict[tuple[str, str, Channel, datetime], RegisterReading] = {}

    def record_registers(self, ctx: TenantContext, readings: Sequence[RegisterReading]) -> None:
        for r in readings:
            self._readings[(ctx.tenant_id, r.meter_id, r.channel, r.at)] = r

    def register_readings(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[RegisterReading]:
        found = [
            r
            for (tenant, meter, chan, at), r in self._readings.items()
            if tenant == ctx.tenant_id and meter == meter_id and chan == channel and start <= at < end
        ]
        return sorted(found, key=lambda r: r.at)


class MemoryDeviceActivity:
    def __init__(self) -> None:
        self._seen: dict[str, dict[tuple[Subject, str], datetime]] = {}

    def touch(self, ctx: TenantContext, seen: Mapping[tuple[Subject, str], datetime]) -> None:
        stored = self._seen.setdefault(ctx.tenant_id, {})
        stored.update(seen)

    def last_seen(self, ctx: TenantContext) -> dict[tuple[Subject, str], datetime]:
        return dict(self._seen.get(ctx.tenant_id, {}))
