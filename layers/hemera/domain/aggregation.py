"""Aggregates of a meter's stored interval series: energy per period, maximum demand, power factor.

The stored intervals are canonical (CT/VT multiplier applied, UTC starts aligned to the interval
length). Periods are calendar periods of the tenant's time zone, so a DST change day is 23 or 25
hours long and its hours are told apart by their UTC offset. An interval belongs to the period
holding its start. A period without data is reported as such (`None` and its missing count),
never as zero: a gap is not a consumption of 0.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from hemera.domain.readings import Channel, IntervalReading, Unit

# A meter's interval length when the range holds no reading to tell it (the platform's default).
DEFAULT_INTERVAL_MINUTES = 15
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Granularity(StrEnum):
    """Length of an aggregation period, in the tenant's calendar."""

    INTERVAL = "interval"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    # Not a calendar period: one total per time-of-use post of the meter's tariff over the range.
    POST = "post"


@dataclass(frozen=True, slots=True)
class Period:
    """`[start, end)` in UTC, and how many intervals of the meter's length start inside it."""

    start: datetime
    end: datetime
    expected_intervals: int


def interval_minutes(series: Iterable[Iterable[IntervalReading]]) -> int:
    """The interval length of the first reading found, else `DEFAULT_INTERVAL_MINUTES`."""
    for readings in series:
        for reading in readings:
            return reading.length_minutes
    return DEFAULT_INTERVAL_MINUTES


def _next_boundary(instant: datetime, granularity: Granularity, zone: ZoneInfo, minutes: int) -> datetime:
    """The first period boundary strictly after `instant` (UTC in, UTC out)."""
    if granularity is Granularity.POST:
        raise ValueError("posts are not calendar periods: use energy_by_post")
    if granularity is Granularity.INTERVAL:
        # Stored intervals sit on a grid of the epoch (a UTC day holds a whole number of them).
        step = timedelta(minutes=minutes)
        return _EPOCH + ((instant - _EPOCH) // step + 1) * step
    local = instant.astimezone(zone)
    if granularity is Granularity.HOUR:
        # `replace` keeps `fold`, so the repeated hour of a DST fall-back keeps its own offset;
        # one hour later in UTC is the next local hour for every zone with whole-hour DST shifts.
        floor = local.replace(minute=0, second=0, microsecond=0)
        return floor.astimezone(UTC) + timedelta(hours=1)
    if granularity is Granularity.DAY:
        return _local_midnight(local.date() + timedelta(days=1), zone)
    first_of_next = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    return _local_midnight(first_of_next, zone)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Where a DST change skips midnight, zoneinfo reads 00:00 with the offset before the change:
    # the same instant as the first wall-clock time that exists that day.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _slots_before(instant: datetime, minutes: int) -> int:
    """How many interval starts of the epoch grid lie before `instant`."""
    step = timedelta(minutes=minutes)
    return -((_EPOCH - instant) // step)  # ceiling division


def calendar_periods(
    start: datetime, end: datetime, granularity: Granularity, zone: ZoneInfo, minutes: int
) -> list[Period]:
    """The periods of `granularity` in the tenant's calendar covering `[start, end)`, the first
    and last cut to the range, each with the number of `minutes`-long intervals it should hold."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("period bounds must be tz-aware")
    cursor, stop = start.astimezone(UTC), end.astimezone(UTC)
    periods: list[Period] = []
    while cursor < stop:
        boundary = min(_next_boundary(cursor, granularity, zone, minutes), stop)
        expected = _slots_before(boundary, minutes) - _slots_before(cursor, minutes)
        periods.append(Period(cursor, boundary, expected))
        cursor = boundary
    return periods


def _by_period(readings: Iterable[IntervalReading], periods: Sequence[Period]) -> list[list[IntervalReading]]:
    """Readings grouped by the period holding their start; readings outside every period are
    left out."""
    starts = [p.start for p in periods]
    groups: list[list[IntervalReading]] = [[] for _ in periods]
    for reading in readings:
        i = bisect_right(starts, reading.start) - 1
        if i >= 0 and reading.start < periods[i].end:
            groups[i].append(reading)
    return groups


@dataclass(frozen=True, slots=True)
class EnergyTotal:
    """Energy of one channel in one period. `energy` is None when no interval was found."""

    period: Period
    energy: Decimal | None
    intervals: int

    @property
    def missing(self) -> int:
        return max(self.period.expected_intervals - self.intervals, 0)


def energy_by_period(readings: Iterable[IntervalReading], periods: Sequence[Period]) -> list[EnergyTotal]:
    """Sum of the intervals found in each period (kWh or kvarh, the channel's unit); missing
    intervals are counted, not filled."""
    return [
        EnergyTotal(period, sum((r.value for r in found), Decimal(0)) if found else None, len(found))
        for period, found in zip(periods, _by_period(readings, periods), strict=True)
    ]


def energy_by_post(
    readings: Iterable[IntervalReading],
    start: datetime,
    end: datetime,
    minutes: int,
    posts: Sequence[str],
    post_of: Callable[[datetime], str],
) -> list[EnergyTotal]:
    """Energy of the intervals of `[start, end)` per time-of-use post, in the order of `posts`:
    an interval belongs to the post of its start (`post_of`, e.g. `hemera.domain.billing.tou.post_of`
    with the meter's calendar). Each total's period is the whole range, its `expected_intervals`
    the interval starts of the range that fall in the post; missing intervals are counted, not
    filled."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("range bounds must be tz-aware")
    first, stop = start.astimezone(UTC), end.astimezone(UTC)
    expected = dict.fromkeys(posts, 0)
    step = timedelta(minutes=minutes)
    cursor = _EPOCH + _slots_before(first, minutes) * step
    while cursor < stop:
        expected[post_of(cursor)] += 1
        cursor += step
    found: dict[str, list[Decimal]] = {post: [] for post in posts}
    for reading in readings:
        if first <= reading.start < stop:
            found[post_of(reading.start)].append(reading.value)
    return [
        EnergyTotal(
            Period(first, stop, expected[post]),
            sum(found[post], Decimal(0)) if found[post] else None,
            len(found[post]),
        )
        for post in posts
    ]


def interval_demand_kw(reading: IntervalReading) -> Decimal:
    """Average active power over one interval: kW = kWh x 60 / interval minutes (block demand,
    the quantity a maximum-demand register such as OBIS 1.0.1.6.0 keeps)."""
    if reading.unit is not Unit.KWH:
        raise ValueError(f"demand needs active energy in kWh, not {reading.unit}")
    return reading.value * 60 / reading.length_minutes


@dataclass(frozen=True, slots=True)
class PeakDemand:
    """Maximum demand in one period and the UTC start of the interval where it occurred (the
    earliest one on a tie); both None when no interval was found."""

    period: Period
    demand_kw: Decimal | None
    at: datetime | None
    intervals: int

    @property
    def missing(self) -> int:
        return max(self.period.expected_intervals - self.intervals, 0)


def peak_demand_by_period(readings: Iterable[IntervalReading], periods: Sequence[Period]) -> list[PeakDemand]:
    """The maximum interval demand of each period (see `interval_demand_kw`)."""
    peaks: list[PeakDemand] = []
    for period, found in zip(periods, _by_period(readings, periods), strict=True):
        best: IntervalReading | None = None
        for reading in sorted(found, key=lambda r: r.start):
            if best is None or interval_demand_kw(reading) > interval_demand_kw(best):
                best = reading
        if best is None:
            peaks.append(PeakDemand(period, None, None, 0))
        else:
            peaks.append(PeakDemand(period, interval_demand_kw(best), best.start, len(found)))
    return peaks


# Reactive energy behind the power factor: R+ and R- together (IEC 62053-23 quadrants: R+ is
# Q1+Q2, R- is Q3+Q4; for a consumer importing energy, inductive and capacitive). A load that
# draws reactive energy of either kind lowers its power factor, and the Brazilian reactive-excess
# rule charges both kinds (REFERENCE.md, REN 414/1000), so both count: PF is not signed here.
POWER_FACTOR_REACTIVE_CHANNELS = (Channel.REACTIVE_IMPORT, Channel.REACTIVE_EXPORT)


def power_factor(active_kwh: Decimal, reactive_kvarh: Decimal) -> Decimal | None:
    """Average power factor from energies: P / sqrt(P^2 + Q^2); None when both are zero (no load,
    no defined power factor)."""
    apparent = (active_kwh * active_kwh + reactive_kvarh * reactive_kvarh).sqrt()
    return None if apparent == 0 else active_kwh / apparent


@dataclass(frozen=True, slots=True)
class PowerFactorPeriod:
    """Power factor of one period over the intervals that have active import and every reactive
    channel (an interval lacking one of them is missing: half an interval would bias the ratio)."""

    period: Period
    active_kwh: Decimal | None
    reactive_kvarh: Decimal | None
    power_factor: Decimal | None
    intervals: int

    @property
    def missing(self) -> int:
        return max(self.period.expected_intervals - self.intervals, 0)


def power_factor_by_period(
    active_import: Iterable[IntervalReading],
    reactive: Sequence[Iterable[IntervalReading]],
    periods: Sequence[Period],
) -> list[PowerFactorPeriod]:
    """PF per period from active import and the reactive channels (see
    `POWER_FACTOR_REACTIVE_CHANNELS`), over the intervals where all of them were found."""
    reactive_at: list[dict[datetime, Decimal]] = [{r.start: r.value for r in series} for series in reactive]
    results: list[PowerFactorPeriod] = []
    for period, found in zip(periods, _by_period(active_import, periods), strict=True):
        complete = [r for r in found if all(r.start in values for values in reactive_at)]
        if not complete:
            results.append(PowerFactorPeriod(period, None, None, None, 0))
            continue
        p = sum((r.value for r in complete), Decimal(0))
        q = sum((values[r.start] for r in complete for values in reactive_at), Decimal(0))
        results.append(PowerFactorPeriod(period, p, q, power_factor(p, q), len(complete)))
    return results
