"""Canonical interval readings and their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hemera.domain.errors import MalformedFrame


class Channel(StrEnum):
    """Canonical measurement channels (OBIS quantity in brackets)."""

    ACTIVE_IMPORT = "active_import"  # kWh, A+ (1.0.1.8.0)
    ACTIVE_EXPORT = "active_export"  # kWh, A- (1.0.2.8.0)
    REACTIVE_IMPORT = "reactive_import"  # kvarh, R+ (1.0.3.8.0)
    REACTIVE_EXPORT = "reactive_export"  # kvarh, R- (1.0.4.8.0)


class Unit(StrEnum):
    KWH = "kWh"
    KVARH = "kvarh"


CHANNEL_UNITS: dict[Channel, Unit] = {
    Channel.ACTIVE_IMPORT: Unit.KWH,
    Channel.ACTIVE_EXPORT: Unit.KWH,
    Channel.REACTIVE_IMPORT: Unit.KVARH,
    Channel.REACTIVE_EXPORT: Unit.KVARH,
}


class Source(StrEnum):
    METER = "meter"
    ESTIMATED = "estimated"
    EDITED = "edited"


class VeeStatus(StrEnum):
    """Where a value stands in validation. Ingest writes `raw`; VEE moves it on."""

    RAW = "raw"
    VALID = "valid"
    SUSPECT = "suspect"
    ESTIMATED = "estimated"
    EDITED = "edited"


# Meter status bits carried in each load-profile record (see the model's register map).
METER_FLAG_POWER_OUTAGE = 0x01
METER_FLAG_CLOCK_ADJUSTED = 0x02


@dataclass(frozen=True, slots=True)
class IntervalReading:
    """One interval of one channel of one meter.

    `start` is tz-aware UTC; `value` is in `unit` after the register scale; `raw_value` is the
    integer the meter reported. Provenance: `source`, `status` (VEE), AEMO quality flag (`A`
    actual until VEE says otherwise) and the meter's own status bits.
    """

    meter_id: str
    channel: Channel
    start: datetime
    length_minutes: int
    value: Decimal
    unit: Unit
    raw_value: int | None = None
    source: Source = Source.METER
    status: VeeStatus = VeeStatus.RAW
    quality_flag: str = "A"
    meter_flags: int = 0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            raise ValueError("interval start must be tz-aware UTC")
        if self.length_minutes not in (5, 15, 30, 60):
            raise ValueError(f"unsupported interval length {self.length_minutes} min")
        minute_of_day = self.start.hour * 60 + self.start.minute
        if self.start.second or self.start.microsecond or minute_of_day % self.length_minutes:
            raise ValueError(f"interval start {self.start.isoformat()} is not aligned to the interval length")

    @classmethod
    def decoded(cls, where: str, **fields: Any) -> IntervalReading:
        """A reading built from a device's frame: an invalid one is a `MalformedFrame` naming
        `where` in the frame it came from (the message is quarantined with that reason)."""
        try:
            return cls(**fields)
        except ValueError as exc:
            raise MalformedFrame(f"{where}: {exc}") from exc

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.length_minutes)

    @property
    def day(self) -> date:
        """The UTC day whose meter-channel-day item holds this interval."""
        return self.start.date()

    @property
    def slot(self) -> str:
        """Key of the interval inside its day item: 'HHMM' of its UTC start."""
        return f"{self.start.hour:02d}{self.start.minute:02d}"


def utc_from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
