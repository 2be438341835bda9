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

from hemera.domain.errors import MalformedFrame
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


def check_series_length(
    group: Iterable[IntervalReading], stored_minutes: int | None, meter_id: str, day: date
) -> int:
    """The one interval length of a series' readings, which must also be the stored day's: slots
    of another length would land in wrong places. Raises `MalformedFrame` otherwise."""
    lengths = {r.length_minutes for r in group}
    if len(lengths) != 1:
        raise MalformedFrame(f"meter {meter_id} sent mixed interval lengths {sorted(lengths)} for {day}")
    (minutes,) = lengths
    if stored_minutes is not None and stored_minutes != minutes:
        raise MalformedFrame(
            f"meter {meter_id} sent {minutes}-minute intervals for {day}, stored at {stored_minutes} minutes"
        )
    return minutes


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


# --- columnar storage form ----------------------------------------------------------------------
# A meter-channel-day is stored as parallel columns, one position per interval of the UTC day,
# instead of a map of 96 small maps: ~1 KB instead of ~6 KB per item (1 write unit instead of 6,
# REFERENCE.md) and far cheaper to (de)serialize.
MISSING = "-"
SOURCE_CODES = {Source.METER: "m", Source.ESTIMATED: "e", Source.EDITED: "d"}
STATUS_CODES = {
    VeeStatus.RAW: "r",
    VeeStatus.VALID: "v",
    VeeStatus.SUSPECT: "s",
    VeeStatus.ESTIMATED: "e",
    VeeStatus.EDITED: "d",
}
_SOURCES = {code: source for source, code in SOURCE_CODES.items()}
_STATUSES = {code: status for status, code in STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """One day of one channel: position i is the interval starting i x `minutes` after 00:00 UTC."""

    values: list[Decimal | None]
    raw: list[int | None]
    source: str
    status: str
    quality: str
    meter_flags: dict[str, int]  # sparse: slot key → flags, only where non-zero


def slot_key(index: int, minutes: int) -> str:
    minute = index * minutes
    return f"{minute // 60:02d}{minute % 60:02d}"


def slot_index(key: str, minutes: int) -> int:
    return (int(key[:2]) * 60 + int(key[2:])) // minutes


def to_columns(slots: Mapping[str, Slot], minutes: int) -> SeriesColumns:
    size = 24 * 60 // minutes
    values: list[Decimal | None] = [None] * size
    raw: list[int | None] = [None] * size
    source, status, quality = [MISSING] * size, [MISSING] * size, [MISSING] * size
    flags: dict[str, int] = {}
    for key, slot in slots.items():
        i = slot_index(key, minutes)
        values[i] = Decimal(str(slot["v"]))
        raw[i] = slot.get("raw")
        source[i] = SOURCE_CODES[Source(slot["src"])]
        status[i] = STATUS_CODES[VeeStatus(slot["st"])]
        quality[i] = slot["q"]
        if slot.get("mf"):
            flags[key] = int(slot["mf"])
    return SeriesColumns(values, raw, "".join(source), "".join(status), "".join(quality), flags)


def from_columns(columns: SeriesColumns, minutes: int) -> dict[str, Slot]:
    slots: dict[str, Slot] = {}
    for i, value in enumerate(columns.values):
        if value is None:
            continue
        key = slot_key(i, minutes)
        slots[key] = {
            "v": str(value),
            "raw": columns.raw[i],
            "src": _SOURCES[columns.source[i]].value,
            "st": _STATUSES[columns.status[i]].value,
            "q": columns.quality[i],
            "mf": columns.meter_flags.get(key, 0),
        }
    return slots
