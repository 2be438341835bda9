"""Port of the device event log and the outages derived from it (written by translate, read by
VEE, alarms and the portal)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.meter_events import MeterEvent, Outage, Subject
from hemera.domain.readings import Channel
from hemera.domain.registers import RegisterReading
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


class RegisterLog(Protocol):
    def register_readings(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[RegisterReading]:
        """Register readings of one meter and channel with start ≤ at < end, in time order."""
        ...


class RegisterStore(RegisterLog, Protocol):
    def record_registers(self, ctx: TenantContext, readings: Sequence[RegisterReading]) -> None:
        """Store register readings idempotently (identity: meter, channel, at)."""
        ...


class DeviceActivity(Protocol):
    """When each meter and RTU of a tenant last delivered data (translate touches it; the alarms
    sweep finds silent ones)."""

    def touch(self, ctx: TenantContext, seen: Mapping[tuple[Subject, str], datetime]) -> None:
        """Record these last-seen times: when the platform received each subject's latest data
        (arrival times, so a later call holds later times but for concurrent batches seconds
        apart)."""
        ...

    def last_seen(self, ctx: TenantContext) -> dict[tuple[Subject, str], datetime]:
        """Every meter and RTU of the tenant that ever delivered, with its last-seen time."""
        ...
