"""The working state of one VEE run: the day's interval grid, what the meter sent for each
interval, the history indexed by local wall-clock slot, and the register readings at the day's
boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property

from hemera.domain.final_series import FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, IntervalReading
from hemera.domain.registers import RegisterReading
from hemera.domain.vee.calendar import LocalSlot, day_bounds, day_grid, local_slot
from hemera.domain.vee.catalog import OUTAGE, OUTAGE_REASONS
from hemera.domain.vee.config import VeeConfig
from hemera.domain.vee.model import VeeInputs

# Statuses whose value an estimator may build on (a like day's slot, an interpolation anchor).
TRUSTED = frozenset({FinalStatus.ACTUAL, FinalStatus.EDITED})


@dataclass
class Slot:
    """One interval of the day while the engine works on it (becomes a `FinalInterval`)."""

    start: datetime
    raw: Decimal | None  # what the meter sent (None: missing)
    value: Decimal | None = None
    status: FinalStatus = FinalStatus.ACTUAL
    quality: QualityFlag = QualityFlag.ACTUAL
    espi: int = 0
    method: int | None = None
    reason: int | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    outage_fraction: Decimal = Decimal(0)  # share of the interval inside an outage (0..1)
    clock_suspect: bool = False
    meter_flags: int = 0  # the meter's status bits on the reading (outage, clock adjusted)
    # Why the meter's value (or its absence) must be substituted: (rule id, AEMO reason code).
    substitute: tuple[str, int | None] | None = None
    # A rule the meter's value failed but that keeps it (status validation_failed): (rule, reason).
    kept: tuple[str, int | None] | None = None

    @property
    def in_outage(self) -> bool:
        return self.outage_fraction > 0

    @property
    def checkable(self) -> bool:
        """A meter value that per-interval rules examine (present, outside outages, not failed yet)."""
        return self.raw is not None and not self.in_outage and self.substitute is None


@dataclass(frozen=True)
class HistoryDay:
    """A final day of history; its intervals are indexed by local wall-clock slot on first use
    (most runs need only the day's totals, and indexing 8 weeks of days dominates the cost)."""

    final: FinalDay
    timezone: str

    @property
    def day(self) -> date:
        return self.final.local_day

    @cached_property
    def had_outage(self) -> bool:
        return any(i.reason_code in OUTAGE_REASONS for i in self.final.intervals)

    @cached_property
    def complete(self) -> bool:
        """Every interval has a value."""
        return all(i.value is not None for i in self.final.intervals)

    @cached_property
    def total(self) -> Decimal:
        return self.final.total()

    @cached_property
    def by_slot(self) -> dict[LocalSlot, FinalInterval]:
        return {local_slot(i.start, self.timezone): i for i in self.final.intervals}

    def trusted_value(self, slot: LocalSlot) -> Decimal | None:
        """The actual or edited value at `slot` (the same wall-clock time), or None."""
        hour, minute, fold = slot
        interval = self.by_slot.get(slot) or self.by_slot.get((hour, minute, 1 - fold))
        if interval is None or interval.status not in TRUSTED or interval.value is None:
            return None
        return interval.value


@dataclass
class DayContext:
    inputs: VeeInputs
    config: VeeConfig
    grid: tuple[datetime, ...]
    day_start: datetime
    day_end: datetime
    slots: list[Slot]
    extras: tuple[datetime, ...]  # readings inside the day that fit no interval of the grid
    history: tuple[HistoryDay, ...]  # most recent first
    history_by_day: dict[date, FinalDay] = field(default_factory=dict)

    @property
    def minutes(self) -> int:
        return self.inputs.interval_minutes

    def demand_kw(self, value: Decimal) -> Decimal:
        """Demand of an interval: energy x 60 / minutes (kW from kWh)."""
        return value * 60 / self.minutes

    def quantize(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-self.config.decimals), rounding=ROUND_HALF_EVEN)

    def slot_key(self, index: int) -> LocalSlot:
        return local_slot(self.grid[index], self.inputs.timezone)

    def register_at(self, instant: datetime) -> RegisterReading | None:
        """The register reading nearest to `instant` within the configured window, if any."""
        window = timedelta(minutes=self.config.register_window_minutes)
        near = [r for r in self.inputs.registers if abs(r.at - instant) <= window]
        if not near:
            return None
        return min(near, key=lambda r: (abs(r.at - instant), r.at))

    def day_register_delta(self) -> Decimal | None:
        """Register advance over the local day when readings at both boundaries exist."""
        first, last = self.register_at(self.day_start), self.register_at(self.day_end)
        if first is None or last is None:
            return None
        return last.value - first.value


def _history_day(day: FinalDay, timezone: str, minutes: int) -> HistoryDay | None:
    return HistoryDay(day, timezone) if day.interval_minutes == minutes else None


def build_context(inputs: VeeInputs, config: VeeConfig) -> DayContext:
    grid = day_grid(inputs.local_day, inputs.timezone, inputs.interval_minutes)
    day_start, day_end = day_bounds(inputs.local_day, inputs.timezone)
    on_grid = set(grid)
    received: dict[datetime, IntervalReading] = {}
    extras: list[datetime] = []
    for reading in inputs.readings:
        if reading.meter_id != inputs.meter_id or reading.channel != inputs.channel:
            continue
        if not day_start <= reading.start < day_end:
            continue  # the caller may pass whole UTC days around the local day
        if reading.length_minutes != inputs.interval_minutes or reading.start not in on_grid:
            extras.append(reading.start)
            continue
        known = received.get(reading.start)
        if known is not None and known.value != reading.value:
            extras.append(reading.start)  # two different values for one interval
        received[reading.start] = reading
    # A value the stored day already holds from the meter is never lost to an estimate, even if
    # the inputs no longer carry it (an actual value always wins over an estimate).
    stored = {
        i.start: i
        for i in (inputs.previous.intervals if inputs.previous is not None else ())
        if i.raw_value is not None and i.length_minutes == inputs.interval_minutes
    }
    slots = []
    for start in grid:
        got = received.get(start)
        slot = Slot(start=start, raw=None if got is None else got.value)
        slot.meter_flags = 0 if got is None else got.meter_flags
        kept = stored.get(start)
        if got is None and kept is not None:
            slot.raw = kept.raw_value
            slot.meter_flags = METER_FLAG_POWER_OUTAGE if kept.rule_id == OUTAGE else 0
        slot.value = slot.raw
        slots.append(slot)
    history = [
        h
        for h in (_history_day(d, inputs.timezone, inputs.interval_minutes) for d in inputs.history)
        if h is not None and h.day != inputs.local_day
    ]
    history.sort(key=lambda h: h.day, reverse=True)
    return DayContext(
        inputs=inputs,
        config=config,
        grid=grid,
        day_start=day_start,
        day_end=day_end,
        slots=slots,
        extras=tuple(sorted(set(extras))),
        history=tuple(history),
        history_by_day={d.local_day: d for d in inputs.history},
    )
