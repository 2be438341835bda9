"""Device events (from meter event logs and RTU messages) and the outages derived from them.

A `MeterEvent` is one entry of a meter's event log (DLMS 0.0.99.98.x / 1.0.99.97.0 profiles,
Modbus event registers) or one RTU event (`hemera.rtu-event/1`), translated to a canonical type.
Alarms, VEE (outage intervals are valid zero/partial data; intervals around clock resets are
suspect) and the portal read them through the `MeterEventLog` port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    POWER_DOWN = "power_down"  # last gasp
    POWER_UP = "power_up"
    COVER_OPEN = "cover_open"
    COVER_CLOSED = "cover_closed"
    MAGNETIC_TAMPER = "magnetic_tamper"
    MAGNETIC_TAMPER_CLEARED = "magnetic_tamper_cleared"
    PHASE_LOSS = "phase_loss"
    PHASE_RESTORED = "phase_restored"
    REVERSE_ENERGY = "reverse_energy"
    REVERSE_ENERGY_CLEARED = "reverse_energy_cleared"
    CLOCK_RESET = "clock_reset"
    CLOCK_ADJUSTED = "clock_adjusted"
    RELAY_OPEN = "relay_open"
    RELAY_CLOSED = "relay_closed"
    RTU_BUFFER_OVERFLOW = "rtu_buffer_overflow"
    RTU_LOW_SIGNAL = "rtu_low_signal"
    RTU_HIGH_TEMPERATURE = "rtu_high_temperature"
    METER_READ_FAILED = "meter_read_failed"


class Subject(StrEnum):
    METER = "meter"
    RTU = "rtu"


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """One device event. `at` is tz-aware UTC (the device's time stamp); `subject_id` is the meter
    id (subject meter) or the RTU's device id (subject rtu); `device_id` the RTU that reported it;
    `code` the device's own event code when it has one; `detail` small extra facts (phase, signal
    dBm, temperature °C, duration reported by the meter, …)."""

    subject: Subject
    subject_id: str
    device_id: str
    type: EventType
    at: datetime
    code: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        """Stable identity: the same entry read twice from the log is the same event."""
        return f"{self.subject.value}:{self.subject_id}:{self.at.isoformat()}:{self.type.value}"


class OutageSource(StrEnum):
    LAST_GASP = "last_gasp"  # the meter's power-down event
    POWER_UP = "power_up"  # only the power-up was seen (start from its reported duration)
    INFERRED_COMMS = "inferred_comms"  # no event: inferred from silence / outage bits


@dataclass(frozen=True, slots=True)
class Outage:
    """A supply interruption at a meter: [start, end); `end` None while it lasts."""

    meter_id: str
    start: datetime
    end: datetime | None
    source: OutageSource

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start

    def covers(self, start: datetime, end: datetime) -> bool:
        """True when [start, end) overlaps the outage."""
        return self.start < end and (self.end is None or start < self.end)


def event_detail(event: MeterEvent) -> dict[str, Any]:
    """A `MeterEventsRecorded` event lists its events in this JSON form."""
    return {
        "subject": event.subject.value,
        "subject_id": event.subject_id,
        "device_id": event.device_id,
        "type": event.type.value,
        "at": event.at.isoformat(),
        "code": event.code,
        "detail": event.detail,
    }


def event_from_detail(entry: dict[str, Any]) -> MeterEvent:
    return MeterEvent(
        subject=Subject(entry["subject"]),
        subject_id=str(entry["subject_id"]),
        device_id=str(entry["device_id"]),
        type=EventType(entry["type"]),
        at=datetime.fromisoformat(entry["at"]),
        code=entry.get("code"),
        detail=dict(entry.get("detail") or {}),
    )
