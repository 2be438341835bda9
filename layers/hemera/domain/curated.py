"""Curated interval rows: the analytics form of a meter-channel-day, one row per interval.

A meter-day is curated again whenever its data version changes, so the curated dataset holds
several versions of an interval; readers keep the row with the highest `data_version` for each
(tenant, meter, channel, interval start) — see `CuratedDatasetDef.latest_select`. Rows of one
tenant and UTC day go to one Hive-style partition, `tenant=<t>/date=<YYYY-MM-DD>/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.tenancy import validate_id

# decimal(18,6): six places keep every register scaler a meter model uses (down to 10^-6) exact,
# and twelve integer digits hold any 5-60 minute interval of a C&I meter (a terawatt-hour would
# still fit), while Athena sums stay exact decimals, as billing needs.
VALUE_PRECISION = 18
VALUE_SCALE = 6
_QUANTUM = Decimal(1).scaleb(-VALUE_SCALE)
_LIMIT = Decimal(10) ** (VALUE_PRECISION - VALUE_SCALE)


@dataclass(frozen=True, slots=True)
class CuratedRow:
    """One interval of one data version. The tenant and the UTC date are not columns: they are
    the row's partition (see `partition_path`)."""

    meter_id: str
    channel: str
    interval_start: datetime  # tz-aware UTC
    interval_minutes: int
    value: Decimal  # exactly VALUE_SCALE places
    unit: str
    quality: str
    source: str
    status: str
    raw_value: int | None
    meter_flags: int
    data_version: int
    curated_at: datetime  # tz-aware UTC


def curated_value(value: Decimal) -> Decimal:
    """The value at the dataset's scale (banker's rounding past six places, which no meter model
    reaches); a value too large for decimal(18,6) is a ValueError, never a silent overflow."""
    try:
        scaled = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:
        raise ValueError(f"interval value {value} cannot be curated as decimal(18,6)") from exc
    if abs(scaled) >= _LIMIT:
        raise ValueError(f"interval value {value} exceeds decimal(18,6)")
    return scaled


def curated_rows(
    readings: Iterable[IntervalReading], data_version: int, curated_at: datetime
) -> list[CuratedRow]:
    """The rows of one meter-channel-day at `data_version`, in interval order."""
    return [
        CuratedRow(
            meter_id=r.meter_id,
            channel=r.channel.value,
            interval_start=r.start,
            interval_minutes=r.length_minutes,
            value=curated_value(r.value),
            unit=r.unit.value,
            quality=r.quality_flag,
            source=r.source.value,
            status=r.status.value,
            raw_value=r.raw_value,
            meter_flags=r.meter_flags,
            data_version=data_version,
            curated_at=curated_at,
        )
        for r in sorted(readings, key=lambda r: r.start)
    ]


def utc_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day: the span of one meter-channel-day item."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def partition_path(tenant_id: str, day: date) -> str:
    """Hive-style partition of a tenant's UTC day, ending in '/': `tenant=<t>/date=<YYYY-MM-DD>/`.

    The tenant id is validated (no '/', '=' or '..'), so a key never leaves its tenant's partition.
    """
    return f"tenant={validate_id(tenant_id, 'tenant')}/date={day.isoformat()}/"


def curated_object_key(prefix: str, tenant_id: str, day: date, batch_id: str) -> str:
    """Where one batch's rows of one tenant-day go: `<prefix>tenant=<t>/date=<d>/<batch>.parquet`."""
    return f"{prefix}{partition_path(tenant_id, day)}{batch_id}.parquet"


@dataclass(frozen=True, slots=True)
class CuratedSeries:
    """A meter-channel-day as curated: which data version its rows carry."""

    meter_id: str
    channel: Channel
    day: date
    data_version: int


def batch_digest(tenant_id: str, day: date, series: Iterable[CuratedSeries]) -> str:
    """A name for a tenant-day's object that depends only on what it holds: a redelivered batch
    overwrites its own object instead of adding a copy."""
    lines = sorted(f"{s.meter_id}|{s.channel.value}|{s.data_version}" for s in series)
    payload = "\n".join([tenant_id, day.isoformat(), *lines]).encode()
    return hashlib.sha256(payload).hexdigest()[:32]
