"""Meter-channel-day series: the unit of storage (one item per meter, channel and UTC day).

One item holds up to 96 intervals (15-minute data) because per-interval items cost ~25x more in
write units and requests (REFERENCE.md, cost model). Merging is idempotent: delivering the same
intervals again changes nothing, so at-least-once delivery has an exactly-once effect.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from hemera.domain.readings import Channel, IntervalReading, Source, Unit, VeeStatus

SeriesKey = tuple[str, Channel, date]  # (meter, channel, UTC day)
Slot = dict[str, Any]  # the stored form of one interval, see `slot_of`


def slot_of(reading: IntervalReading) -> Slot:
    """Compact stored form of one interval: value as a decimal string keeps it exact."""
    return {
        "v": str(reading.value),
        "raw": reading.raw_value,
        "src": reading.source.value,
        "st": reading.status.value,
        "q": reading.quality_flag,
        "mf": reading.meter_flags,
    }


def reading_of(
    meter_id: str,
    channel: Channel,
    day: date,
    slot_key: str,
    slot: Mapping[str, Any],
    minutes: int,
    unit: Unit,
) -> IntervalReading:
    start = datetime.combine(day, time(int(slot_key[:2]), int(slot_key[2:])), tzinfo=UTC)
    raw = slot.get("raw")
    return IntervalReading(
        meter_id=meter_id,
        channel=channel,
        start=start,
        length_minutes=minutes,
        value=Decimal(str(slot["v"])),
        unit=unit,
        raw_value=int(raw) if raw is not None else None,
        source=Source(slot.get("src", "meter")),
        status=VeeStatus(slot.get("st", "raw")),
        quality_flag=str(slot.get("q", "A")),
        meter_flags=int(slot.get("mf", 0)),
    )


def group_by_series(readings: Iterable[IntervalReading]) -> dict[SeriesKey, list[IntervalReading]]:
    groups: dict[SeriesKey, list[IntervalReading]] = defaultdict(list)
    for reading in readings:
        groups[(reading.meter_id, reading.channel, reading.day)].append(reading)
    return dict(groups)


@dataclass(frozen=True, slots=True)
class SlotMerge:
    slots: dict[str, Slot]
    new: int
    changed: int
    unchanged: int

    @property
    def modified(self) -> bool:
        return bool(self.new or self.changed)


def merge_slots(existing: Mapping[str, Slot], readings: Iterable[IntervalReading]) -> SlotMerge:
    """Merge readings of one series into its stored slots; a later delivery of a slot wins."""
    slots = {k: dict(v) for k, v in existing.items()}
    new = changed = unchanged = 0
    for reading in readings:
        incoming = slot_of(reading)
        current = slots.get(reading.slot)
        if current is None:
            new += 1
        elif _same(current, incoming):
            unchanged += 1
            continue
        else:
            changed += 1
        slots[reading.slot] = incoming
    return SlotMerge(slots, new, changed, unchanged)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return Decimal(str(a["v"])) == Decimal(str(b["v"])) and all(
        a.get(k) == b.get(k) for k in ("raw", "src", "st", "q", "mf")
    )
