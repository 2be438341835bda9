"""Device events, registers, outages and device activity of one tenant's translate batch.

`ingest_batch` decodes the `events` and `registers` frames of the envelopes it accepts and the
RTUs' `up/events` messages, and hands them here once per tenant and batch, before the envelopes
enter the ledger (a failure leaves the whole batch to be delivered again; every step repeats
without double effect):

1. registers are put (identity: meter, channel, time);
2. the events not stored yet are announced on the platform bus, one `MeterEventsRecorded` per
   200 (alarms react to them; announced *before* they are recorded, so a crash in between
   announces them again rather than never);
3. the outages of the meters concerned are derived from their power events (new and stored ones
   of the preceding `OUTAGE_LOOKBACK`) and from the outage bits of their intervals, merged with the
   stored outages and written;
4. the events are recorded;
5. every meter and RTU that delivered has its last-seen time moved forward (one write each).

A batch without events, registers or outage bits costs step 5 only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from hemera.definitions import METER_EVENTS_RECORDED
from hemera.domain.errors import InvalidQuery
from hemera.domain.meter_events import EventType, MeterEvent, Outage, Subject, event_detail
from hemera.domain.outages import (
    OUTAGE_LOOKBACK,
    POWER_EVENTS,
    merge_outages,
    outages_from_events,
    outages_from_interval_flags,
)
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, IntervalReading
from hemera.domain.registers import RegisterReading
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.ports import PlatformEvents
from hemera.ports.meter_events import DeviceActivity, MeterEventLog, MeterEventStore, RegisterStore
from hemera.services.access import Caller, PortalPorts, owned_meter
from hemera.services.meter_data import check_range

# One MeterEventsRecorded lists at most this many events (~250 bytes each: far below 256 KB).
EVENTS_PER_ANNOUNCEMENT = 200


class DeviceEventStore(MeterEventStore, Protocol):
    """What translate writes device events and outages through: the port, plus the existence
    check that lets it announce before it records, and the removal of replaced outages."""

    def unseen(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]: ...

    def discard_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None: ...


class OutageLog(MeterEventLog, Protocol):
    """The portal's reads: a meter's events and outages, and a tenant's outages."""

    def tenant_outages(self, ctx: TenantContext, start: datetime, end: datetime) -> list[Outage]: ...


@dataclass(frozen=True, slots=True)
class DeviceEventPorts:
    events: DeviceEventStore
    registers: RegisterStore
    activity: DeviceActivity
    bus: PlatformEvents  # puts with source `hemera.events`


@dataclass
class DeviceBatch:
    """What one tenant's batch delivered besides intervals and instantaneous values."""

    events: list[MeterEvent] = field(default_factory=list)
    registers: list[RegisterReading] = field(default_factory=list)
    # Intervals carrying the power-outage bit, by meter (others are of no interest here).
    outage_intervals: dict[str, list[IntervalReading]] = field(default_factory=dict)
    seen: dict[tuple[Subject, str], datetime] = field(default_factory=dict)

    def saw(self, subject: Subject, subject_id: str, at: datetime) -> None:
        key = (subject, subject_id)
        if key not in self.seen or self.seen[key] < at:
            self.seen[key] = at

    def add_intervals(self, readings: Sequence[IntervalReading]) -> None:
        """Keep the intervals with the outage bit (and, for the runs they make, the meter's
        other intervals of the same envelope): a scan of the flags, nothing more, when none is set."""
        flagged = {r.meter_id for r in readings if r.meter_flags & METER_FLAG_POWER_OUTAGE}
        for meter_id in flagged:
            self.outage_intervals.setdefault(meter_id, []).extend(
                r for r in readings if r.meter_id == meter_id
            )


@dataclass(frozen=True, slots=True)
class DeviceBatchStats:
    registers: int = 0
    events_new: int = 0
    outages_saved: int = 0
    subjects_touched: int = 0

    def __add__(self, other: DeviceBatchStats) -> DeviceBatchStats:
        return DeviceBatchStats(
            self.registers + other.registers,
            self.events_new + other.events_new,
            self.outages_saved + other.outages_saved,
            self.subjects_touched + other.subjects_touched,
        )


def announcements(ctx: TenantContext, events: Sequence[MeterEvent]) -> list[dict[str, Any]]:
    """The details of the `MeterEventsRecorded` events announcing these new events."""
    return [
        {
            "tenant": ctx.tenant_id,
            "events": [event_detail(e) for e in events[start : start + EVENTS_PER_ANNOUNCEMENT]],
        }
        for start in range(0, len(events), EVENTS_PER_ANNOUNCEMENT)
    ]


def record_device_batch(ctx: TenantContext, batch: DeviceBatch, ports: DeviceEventPorts) -> DeviceBatchStats:
    """Store one tenant's device batch (see the module doc for the order and why)."""
    if batch.registers:
        ports.registers.record_registers(ctx, batch.registers)
    new = ports.events.unseen(ctx, batch.events) if batch.events else []
    if new:
        ports.bus.put(METER_EVENTS_RECORDED, announcements(ctx, new))
    saved = _update_outages(ctx, new, batch.outage_intervals, ports.events)
    if new:
        ports.events.record(ctx, new)
    if batch.seen:
        ports.activity.touch(ctx, batch.seen)
    return DeviceBatchStats(len(batch.registers), len(new), saved, len(batch.seen))


def _update_outages(
    ctx: TenantContext,
    new: Sequence[MeterEvent],
    outage_intervals: Mapping[str, Sequence[IntervalReading]],
    store: DeviceEventStore,
) -> int:
    power: dict[str, list[MeterEvent]] = {}
    for event in new:
        if event.subject is Subject.METER and event.type in POWER_EVENTS:
            power.setdefault(event.subject_id, []).append(event)
    saved = 0
    for meter_id in sorted({*power, *outage_intervals}):
        events = power.get(meter_id, [])
        intervals = outage_intervals.get(meter_id, [])
        moments = [e.at for e in events] + [r.start for r in intervals] + [r.end for r in intervals]
        low, high = min(moments) - OUTAGE_LOOKBACK, max(moments) + timedelta(seconds=1)
        if events:
            known = store.events(ctx, Subject.METER, meter_id, low, high)
            by_id = {e.event_id: e for e in (*known, *events) if e.type in POWER_EVENTS}
            derived = outages_from_events(meter_id, by_id.values())
        else:
            derived = []
        derived += outages_from_interval_flags(meter_id, intervals)
        changes = merge_outages(derived, store.outages(ctx, meter_id, low, high))
        if changes.discard:
            store.discard_outages(ctx, changes.discard)
        if changes.save:
            store.save_outages(ctx, changes.save)
        saved += len(changes.save)
    return saved


# --- portal reads -----------------------------------------------------------------------------------
MAX_EVENT_DAYS = 31
DEFAULT_EVENTS_PAGE = 50  # the shared `Limit` parameter of the API
MAX_EVENTS_PAGE = 200
_CURSOR_PREFIX = "ev1|"


@dataclass(frozen=True, slots=True)
class EventPage:
    meter: Meter
    start: datetime
    end: datetime
    events: list[MeterEvent]
    next_cursor: str | None


def _encode_cursor(event: MeterEvent) -> str:
    text = f"{_CURSOR_PREFIX}{event.at.astimezone(UTC).isoformat()}|{event.type.value}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        at, kind = text[len(_CURSOR_PREFIX) :].split("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError(at)
        return moment, EventType(kind).value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidQuery("cursor is not one this API returned (use next_cursor as given)") from exc


def parse_event_type(value: str | None) -> EventType | None:
    if value is None:
        return None
    try:
        return EventType(value)
    except ValueError:
        raise InvalidQuery(f"type must be one of {', '.join(t.value for t in EventType)}") from None


def page_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_EVENTS_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_EVENTS_PAGE:
        raise InvalidQuery(f"limit must be an integer from 1 to {MAX_EVENTS_PAGE}")
    return int(value)


def meter_events_page(
    portal: PortalPorts,
    log: MeterEventLog,
    caller: Caller,
    meter_id: str,
    start: datetime,
    end: datetime,
    kind: EventType | None,
    cursor: str | None,
    limit: int,
) -> EventPage:
    """The meter's events in `[start, end)` (at most 31 days), oldest first, of one type if asked,
    one page of `limit` after `cursor`."""
    meter = owned_meter(portal.registry, caller, meter_id)
    check_range(start, end, MAX_EVENT_DAYS)
    after = _decode_cursor(cursor) if cursor else None
    events = [
        e
        for e in log.events(caller.ctx, Subject.METER, meter.id, start, end)
        if (kind is None or e.type is kind) and (after is None or (e.at, e.type.value) > after)
    ]
    page = events[:limit]
    return EventPage(meter, start, end, page, _encode_cursor(page[-1]) if len(events) > limit else None)


def meter_outages(
    portal: PortalPorts, log: MeterEventLog, caller: Caller, meter_id: str, start: datetime, end: datetime
) -> tuple[Meter, list[Outage]]:
    """The meter's outages overlapping `[start, end)` (at most 31 days), in start order."""
    meter = owned_meter(portal.registry, caller, meter_id)
    check_range(start, end, MAX_EVENT_DAYS)
    return meter, log.outages(caller.ctx, meter.id, start, end)


def tenant_outages(
    portal: PortalPorts, log: OutageLog, caller: Caller, start: datetime, end: datetime
) -> list[Outage]:
    """The outages of the caller's meters overlapping `[start, end)`: every meter of the tenant
    for an operator, the customer's own meters for a customer user."""
    check_range(start, end, MAX_EVENT_DAYS)
    outages = log.tenant_outages(caller.ctx, start, end)
    if caller.customer_id is None or not outages:
        return outages
    meters = portal.registry.get_meters(caller.ctx, {o.meter_id for o in outages})
    return [o for o in outages if o.meter_id in meters and caller.reaches(meters[o.meter_id].customer_id)]
