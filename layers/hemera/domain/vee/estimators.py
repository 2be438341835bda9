"""The estimation ladder: linear interpolation, like day, average like day, previous year, then
scaling the day's estimates to the register delta. Each estimator fills what it can of a run of
consecutive intervals to substitute; the next one on the ladder tries the rest. Estimates never
touch an actual or edited value, and a gap's energy is never moved into the next actual interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from hemera.domain.final_series import (
    ESPI_LINEAR,
    ESPI_REFERENCE_DAY,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.vee import catalog as c
from hemera.domain.vee.calendar import LIKE_DAYS, day_type
from hemera.domain.vee.context import TRUSTED, DayContext, HistoryDay


@dataclass(frozen=True)
class Estimate:
    value: Decimal
    method: int
    espi: int
    rule_id: str


Estimator = Callable[[DayContext, list[int]], dict[int, Estimate]]


def _anchor_before(ctx: DayContext, index: int) -> Decimal | None:
    if index > 0:
        slot = ctx.slots[index - 1]
        return slot.value if slot.status in TRUSTED else None
    yesterday = ctx.history_by_day.get(ctx.inputs.local_day - timedelta(days=1))
    if yesterday and yesterday.intervals and yesterday.intervals[-1].end == ctx.grid[0]:
        last = yesterday.intervals[-1]
        return last.value if last.status in TRUSTED else None
    return None


def _anchor_after(ctx: DayContext, index: int) -> Decimal | None:
    if index < len(ctx.slots) - 1:
        slot = ctx.slots[index + 1]
        return slot.value if slot.status in TRUSTED else None
    tomorrow = ctx.history_by_day.get(ctx.inputs.local_day + timedelta(days=1))
    end = ctx.grid[-1] + timedelta(minutes=ctx.minutes)
    if tomorrow and tomorrow.intervals and tomorrow.intervals[0].start == end:
        first = tomorrow.intervals[0]
        return first.value if first.status in TRUSTED else None
    return None


def estimate_linear(ctx: DayContext, run: list[int]) -> dict[int, Estimate]:
    """Linear interpolation (AEMO method 17, ESPI 9) between the actual/edited intervals on both
    sides of a gap of at most `linear_max_gap_minutes` (IESO: one hour). The anchors may be the
    last interval of the previous day / first of the next when history holds them. Estimate k of
    n: a + (b - a) x k / (n + 1), rounded, and always between a and b."""
    if len(run) * ctx.minutes > ctx.config.linear_max_gap_minutes:
        return {}
    before, after = _anchor_before(ctx, run[0]), _anchor_after(ctx, run[-1])
    if before is None or after is None:
        return {}
    low, high = min(before, after), max(before, after)
    estimates = {}
    for k, index in enumerate(run, start=1):
        value = ctx.quantize(before + (after - before) * k / (len(run) + 1))
        value = min(max(value, low), high)
        estimates[index] = Estimate(value, c.METHOD_LINEAR, ESPI_LINEAR, c.LINEAR)
    return estimates


def _like_days(ctx: DayContext, max_age_days: int) -> list[HistoryDay]:
    """Earlier outage-free like days (WA/AEMO mapping, holidays as Sundays), nearest first."""
    holidays = ctx.inputs.holidays
    allowed = LIKE_DAYS[day_type(ctx.inputs.local_day, holidays)]
    oldest = ctx.inputs.local_day - timedelta(days=max_age_days)
    return [
        h
        for h in ctx.history
        if oldest <= h.day < ctx.inputs.local_day
        and day_type(h.day, holidays) in allowed
        and not h.had_outage
    ]


def estimate_like_day(ctx: DayContext, run: list[int]) -> dict[int, Estimate]:
    """Like day (AEMO method 14, ESPI 8): the value at the same local time of the nearest earlier
    like day within `like_day_max_age_days` whose interval there is actual or edited."""
    days = _like_days(ctx, ctx.config.like_day_max_age_days)
    estimates = {}
    for index in run:
        key = ctx.slot_key(index)
        for day in days:
            value = day.trusted_value(key)
            if value is not None:
                estimates[index] = Estimate(
                    ctx.quantize(value), c.METHOD_LIKE_DAY, ESPI_REFERENCE_DAY, c.LIKE_DAY
                )
                break
    return estimates


def estimate_average_like_day(ctx: DayContext, run: list[int]) -> dict[int, Estimate]:
    """Average like day (AEMO method 15, ESPI 8): the mean at the same local time of the last
    `average_like_day_count` like days (within `average_like_day_window_days`) with an actual or
    edited value there; needs at least `average_like_day_min` of them."""
    config = ctx.config
    days = _like_days(ctx, config.average_like_day_window_days)
    estimates = {}
    for index in run:
        key = ctx.slot_key(index)
        values = [v for v in (d.trusted_value(key) for d in days) if v is not None][
            : config.average_like_day_count
        ]
        if len(values) >= config.average_like_day_min:
            mean = sum(values, Decimal(0)) / len(values)
            estimates[index] = Estimate(
                ctx.quantize(mean), c.METHOD_AVERAGE_LIKE_DAY, ESPI_REFERENCE_DAY, c.AVERAGE_LIKE_DAY
            )
    return estimates


def estimate_previous_year(ctx: DayContext, run: list[int]) -> dict[int, Estimate]:
    """Previous year (AEMO method 23, ESPI 8): the value at the same local time of the day of the
    same type (weekday; holidays as Sundays) nearest to 52 weeks earlier, within
    ± `previous_year_window_days`, outage-free, actual or edited there."""
    holidays = ctx.inputs.holidays
    target = day_type(ctx.inputs.local_day, holidays)
    anchor = ctx.inputs.local_day - timedelta(weeks=52)
    window = ctx.config.previous_year_window_days
    days = sorted(
        (
            h
            for h in ctx.history
            if abs((h.day - anchor).days) <= window
            and day_type(h.day, holidays) == target
            and not h.had_outage
        ),
        key=lambda h: (abs((h.day - anchor).days), h.day),
    )
    estimates = {}
    for index in run:
        key = ctx.slot_key(index)
        for day in days:
            value = day.trusted_value(key)
            if value is not None:
                estimates[index] = Estimate(
                    ctx.quantize(value), c.METHOD_PREVIOUS_YEAR, ESPI_REFERENCE_DAY, c.PREVIOUS_YEAR
                )
                break
    return estimates


ESTIMATORS: dict[str, Estimator] = {
    "linear": estimate_linear,
    "like_day": estimate_like_day,
    "average_like_day": estimate_average_like_day,
    "previous_year": estimate_previous_year,
}


def substitution_runs(ctx: DayContext) -> list[list[int]]:
    """Maximal runs of consecutive intervals waiting for an estimate."""
    runs: list[list[int]] = []
    for index, slot in enumerate(ctx.slots):
        if slot.status is FinalStatus.FAILED and slot.substitute is not None:
            if runs and runs[-1][-1] == index - 1:
                runs[-1].append(index)
            else:
                runs.append([index])
    return runs


def run_ladder(ctx: DayContext) -> None:
    """Fill each run with the estimators in the configured order; runs longer than
    `max_estimated_gap_intervals` are left alone. Linear interpolation fills a run whole or not
    at all; the historical estimators fill interval by interval."""
    limit = ctx.config.max_estimated_gap_intervals
    for run in substitution_runs(ctx):
        if limit is not None and len(run) > limit:
            continue
        pending = list(run)
        for name in ctx.config.estimation_order:
            if not pending:
                break
            filled = ESTIMATORS[name](ctx, pending)
            for index, estimate in filled.items():
                slot = ctx.slots[index]
                value = estimate.value
                if slot.raw is None and 0 < slot.outage_fraction < 1:
                    # Partly inside an outage: only the powered share of the interval drew energy.
                    value = ctx.quantize(value * (1 - slot.outage_fraction))
                slot.value = value
                slot.status = FinalStatus.ESTIMATED
                slot.quality = QualityFlag.SUBSTITUTE
                slot.espi = estimate.espi
                slot.method = estimate.method
                slot.rule_id = estimate.rule_id
                slot.rule_version = c.RULE_VERSIONS[estimate.rule_id]
            pending = [i for i in pending if i not in filled]


def scale_to_register(ctx: DayContext) -> bool:
    """Data scaling (AEMO method 24): when both day-boundary register readings exist and every
    interval has a value, scale the ladder's estimates so the day total equals the register
    delta: each x (delta - fixed) / (sum of estimates), where fixed is the total of actual, edited,
    kept and outage-zero values; spread evenly when the estimates sum to zero. Values are rounded
    to `decimals` and the rounding residue goes to the largest estimate, so the day matches the
    delta exactly when the register and the fixed values carry at most `decimals` places.
    Nothing happens when the fixed values alone exceed the delta (the register-sum rule fails)."""
    delta = ctx.day_register_delta()
    if delta is None or delta < 0 or any(s.value is None for s in ctx.slots):
        return False
    scalable = [s for s in ctx.slots if s.status is FinalStatus.ESTIMATED and s.rule_id != c.OUTAGE_ZERO]
    if not scalable:
        return False
    fixed = sum(
        (
            s.value
            for s in ctx.slots
            if s.value is not None and (s.status is not FinalStatus.ESTIMATED or s.rule_id == c.OUTAGE_ZERO)
        ),
        Decimal(0),
    )
    target = ctx.quantize(delta - fixed)
    if target < 0:
        return False
    current = sum((s.value for s in scalable if s.value is not None), Decimal(0))
    if current == target:
        return False
    if current > 0:
        scaled = [ctx.quantize((s.value or Decimal(0)) * target / current) for s in scalable]
    else:
        scaled = [ctx.quantize(target / len(scalable)) for _ in scalable]
    residue = target - sum(scaled, Decimal(0))
    largest = max(range(len(scaled)), key=lambda i: (scaled[i], -i))
    scaled[largest] += residue
    for slot, value in zip(scalable, scaled, strict=True):
        slot.value = value
        slot.method = c.METHOD_SCALING
        slot.rule_id = c.SCALE_TO_REGISTER
        slot.rule_version = c.RULE_VERSIONS[c.SCALE_TO_REGISTER]
    return True


__all__ = ["ESTIMATORS", "Estimate", "run_ladder", "scale_to_register"]
