"""VEE validation rules. Each has an id and a version (`catalog.py`) and decides what happens to a
value that fails it: *substituted* rules send the interval to the estimation ladder (the meter's
value stays as `raw_value`; when no estimator can fill it the value is kept with status
validation_failed); *kept* rules leave the metered value in place, flagged validation_failed, for
an operator to review; *day* rules only report a `RuleFailure`.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta
from decimal import Decimal

from hemera.domain.meter_events import EventType, Subject
from hemera.domain.readings import METER_FLAG_CLOCK_ADJUSTED, METER_FLAG_POWER_OUTAGE
from hemera.domain.vee import catalog as c
from hemera.domain.vee.calendar import day_type
from hemera.domain.vee.context import DayContext, Slot
from hemera.domain.vee.model import RuleFailure


def _failure(rule_id: str, starts: list[datetime], message: str) -> RuleFailure:
    return RuleFailure(rule_id, c.RULE_VERSIONS[rule_id], tuple(starts), message)


def _fmt(start: datetime) -> str:
    return start.strftime("%H:%MZ")


def mark_outages(ctx: DayContext) -> None:
    """Rule `outage`: how much of each interval lies inside an outage of the event log (union of
    the meter's outages, an open outage lasting to the day's end); a reading carrying the meter's
    power-outage status bit counts as an outage interval too. Outage data is valid, not failed."""
    step = timedelta(minutes=ctx.minutes)
    spans = sorted(
        (o.start, o.end or ctx.day_end) for o in ctx.inputs.outages if o.meter_id == ctx.inputs.meter_id
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    for slot in ctx.slots:
        end = slot.start + step
        covered = sum(
            ((min(end, e) - max(slot.start, s)) for s, e in merged if s < end and slot.start < e),
            timedelta(0),
        )
        fraction = Decimal(int(covered.total_seconds())) / Decimal(int(step.total_seconds()))
        if slot.raw is not None and slot.meter_flags & METER_FLAG_POWER_OUTAGE:
            fraction = max(fraction, Decimal(1))
        slot.outage_fraction = min(fraction, Decimal(1))


def check_interval_count(ctx: DayContext) -> RuleFailure | None:
    """Rule `interval_count`: the intervals received must equal the intervals the local day has
    (92/96/100 at 15 minutes on a 23/24/25-hour day); readings that fit no interval of the day
    (misaligned, another length, two values for one interval) are named."""
    expected = len(ctx.grid)
    received = sum(1 for s in ctx.slots if s.raw is not None)
    if received == expected and not ctx.extras:
        return None
    hours = (ctx.day_end - ctx.day_start) / timedelta(hours=1)
    message = f"received {received} of {expected} intervals of a {hours:g}-hour day"
    if ctx.extras:
        message += f"; {len(ctx.extras)} reading(s) fit no interval: " + ", ".join(map(_fmt, ctx.extras))
    return _failure(c.INTERVAL_COUNT, list(ctx.extras), message)


def check_missing(ctx: DayContext) -> RuleFailure | None:
    """Rule `missing_interval`: every interval the meter did not send (a gap). Substituted:
    filled with zero when wholly inside an outage, else by the estimation ladder."""
    missing = [s.start for s in ctx.slots if s.raw is None]
    for slot in ctx.slots:
        if slot.raw is None and slot.outage_fraction < 1:
            reason = c.REASON_TIME_RESET if slot.clock_suspect else c.REASON_COMMS_FAULT
            if slot.in_outage:
                reason = c.REASON_POWER_OUTAGE
            slot.substitute = (c.MISSING_INTERVAL, reason)
    if not missing:
        return None
    return _failure(c.MISSING_INTERVAL, missing, f"{len(missing)} interval(s) missing")


def check_negative(ctx: DayContext) -> RuleFailure | None:
    """Rule `negative_value`: a negative energy value (channels are unidirectional registers).
    Substituted, reason 73 (below the plausible floor)."""
    failed = []
    for slot in ctx.slots:
        if slot.checkable and slot.raw is not None and slot.raw < 0:
            slot.substitute = (c.NEGATIVE_VALUE, c.REASON_LOW_CONSUMPTION)
            failed.append(slot.start)
    return _failure(c.NEGATIVE_VALUE, failed, f"{len(failed)} negative value(s)") if failed else None


def implausible_limit_kw(ctx: DayContext) -> Decimal | None:
    limits = [ctx.config.implausible_demand_kw] if ctx.config.implausible_demand_kw is not None else []
    if ctx.inputs.max_demand_kw is not None:
        limits.append(ctx.inputs.max_demand_kw * ctx.config.implausible_demand_multiple)
    return min(limits) if limits else None


def check_implausible(ctx: DayContext) -> RuleFailure | None:
    """Rule `implausible_value`: demand above `implausible_demand_multiple` x the meter's demand
    limit (or above `implausible_demand_kw`): more than the installation can draw. Substituted,
    reason 74."""
    limit = implausible_limit_kw(ctx)
    if limit is None:
        return None
    failed = []
    for slot in ctx.slots:
        if slot.checkable and slot.raw is not None and ctx.demand_kw(slot.raw) > limit:
            slot.substitute = (c.IMPLAUSIBLE_VALUE, c.REASON_HIGH_CONSUMPTION)
            failed.append(slot.start)
    if not failed:
        return None
    return _failure(c.IMPLAUSIBLE_VALUE, failed, f"{len(failed)} value(s) above {limit} kW")


def check_spike(ctx: DayContext) -> RuleFailure | None:
    """Rule `spike` (MDM "demand tolerance on consecutive intervals"): an interval's demand more
    than `spike_factor` x the higher demand of its nearest valid neighbours (one each side, in the
    day) and more than `spike_min_delta_kw` above it. Intervals around clock events are exempt
    (a stretched interval carries more energy). Substituted, reason 74."""
    config = ctx.config
    valid = [i for i, s in enumerate(ctx.slots) if s.checkable and not s.clock_suspect]
    flagged: list[int] = []
    for position, index in enumerate(valid):
        neighbours = [valid[p] for p in (position - 1, position + 1) if 0 <= p < len(valid)]
        if not neighbours:
            continue
        reference = max(ctx.demand_kw(_raw(ctx.slots[n])) for n in neighbours)
        demand = ctx.demand_kw(_raw(ctx.slots[index]))
        if demand > config.spike_factor * reference and demand - reference > config.spike_min_delta_kw:
            flagged.append(index)
    for index in flagged:
        ctx.slots[index].substitute = (c.SPIKE, c.REASON_HIGH_CONSUMPTION)
    if not flagged:
        return None
    starts = [ctx.slots[i].start for i in flagged]
    return _failure(
        c.SPIKE,
        starts,
        f"{len(starts)} spike(s) above {config.spike_factor}x neighbouring demand: "
        + ", ".join(map(_fmt, starts)),
    )


def _raw(slot: Slot) -> Decimal:
    assert slot.raw is not None
    return slot.raw


def check_zero_with_register_advance(ctx: DayContext) -> RuleFailure | None:
    """Rule `zero_with_register_advance`: a run of at least `zero_run_intervals` zero values
    outside outages while the energy register advanced. The register readings bracketing the run
    (latest at/before its start, earliest at/after its end, both within the day ± the register
    window) must show more energy than the other intervals between them hold, by more than
    `zero_register_tolerance`. Substituted, reason 68."""
    config = ctx.config
    window = timedelta(minutes=config.register_window_minutes)
    step = timedelta(minutes=ctx.minutes)
    registers = sorted(ctx.inputs.registers, key=lambda r: r.at)
    times = [r.at for r in registers]
    runs: list[list[int]] = []
    for index, slot in enumerate(ctx.slots):
        if slot.checkable and slot.raw == 0:
            if runs and runs[-1][-1] == index - 1:
                runs[-1].append(index)
            else:
                runs.append([index])
    failed: list[datetime] = []
    for run in runs:
        if len(run) < config.zero_run_intervals:
            continue
        run_start, run_end = ctx.grid[run[0]], ctx.grid[run[-1]] + step
        before_at = bisect_right(times, run_start) - 1
        after_at = bisect_right(times, run_end - timedelta(microseconds=1))
        if before_at < 0 or after_at >= len(registers):
            continue
        before, after = registers[before_at], registers[after_at]
        if before.at < ctx.day_start - window or after.at > ctx.day_end + window:
            continue
        # Intervals between the two readings (a reading a little off the interval edge still
        # counts as at the edge: within the register window, at most half an interval).
        slack = min(window, step / 2)
        others = [
            s
            for i, s in enumerate(ctx.slots)
            if s.start >= before.at - slack and s.start + step <= after.at + slack and i not in run
        ]
        if any(s.raw is None for s in others):
            continue  # a gap between the readings could hold the energy: cannot tell
        unexplained = (after.value - before.value) - sum((_raw(s) for s in others), Decimal(0))
        if unexplained > config.zero_register_tolerance:
            for index in run:
                ctx.slots[index].substitute = (c.ZERO_WITH_REGISTER_ADVANCE, c.REASON_ZERO_CONSUMPTION)
                failed.append(ctx.grid[index])
    if not failed:
        return None
    return _failure(
        c.ZERO_WITH_REGISTER_ADVANCE, failed, f"{len(failed)} zero interval(s) while the register advanced"
    )


def check_max_demand(ctx: DayContext) -> RuleFailure | None:
    """Rule `max_demand`: demand above the meter's demand limit (`max_demand_kw`). Kept: the
    energy was metered (billing charges the overrun); flagged validation_failed for review."""
    limit = ctx.inputs.max_demand_kw
    if limit is None:
        return None
    failed = []
    for slot in ctx.slots:
        if slot.checkable and slot.raw is not None and ctx.demand_kw(slot.raw) > limit:
            slot.kept = slot.kept or (c.MAX_DEMAND, None)
            failed.append(slot.start)
    if not failed:
        return None
    return _failure(c.MAX_DEMAND, failed, f"{len(failed)} interval(s) above the demand limit of {limit} kW")


def mark_clock_suspects(ctx: DayContext) -> None:
    """Find the intervals around the meter's clock reset/adjustment events (and intervals whose
    reading carries the clock-adjusted bit), ± `clock_suspect_intervals`."""
    step = timedelta(minutes=ctx.minutes)
    reach = ctx.config.clock_suspect_intervals
    centres: list[int] = []
    for event in ctx.inputs.events:
        if event.type not in (EventType.CLOCK_RESET, EventType.CLOCK_ADJUSTED):
            continue
        if event.subject is not Subject.METER or event.subject_id != ctx.inputs.meter_id:
            continue
        centres.append((event.at - ctx.grid[0]) // step if ctx.grid else 0)
    centres += [i for i, s in enumerate(ctx.slots) if s.meter_flags & METER_FLAG_CLOCK_ADJUSTED]
    for centre in centres:
        for index in range(max(centre - reach, 0), min(centre + reach + 1, len(ctx.slots))):
            ctx.slots[index].clock_suspect = True


def check_clock_event(ctx: DayContext) -> RuleFailure | None:
    """Rule `clock_event`: metered intervals around a clock reset/adjustment are suspect. Kept
    (the energy was metered, only its placement in time is uncertain), reason 89; a missing one
    is estimated with reason 89."""
    suspects = [s for s in ctx.slots if s.clock_suspect]
    for slot in suspects:
        if slot.checkable:
            slot.kept = slot.kept or (c.CLOCK_EVENT, c.REASON_TIME_RESET)
    if not suspects:
        return None
    return _failure(
        c.CLOCK_EVENT,
        [s.start for s in suspects],
        f"{len(suspects)} interval(s) around a meter clock reset/adjustment",
    )


def check_register_sum(ctx: DayContext) -> RuleFailure | None:
    """Rule `register_sum`: the day's final total against the register delta over the local day
    (readings within `register_window_minutes` of both midnights) must agree within
    max(`register_sum_tolerance`, `register_sum_tolerance_ratio` x delta). Day rule."""
    delta = ctx.day_register_delta()
    if delta is None:
        return None
    if delta < 0:
        return _failure(c.REGISTER_SUM, [], f"the register went backwards by {-delta} over the day")
    if any(s.value is None for s in ctx.slots):
        return None  # the gaps are reported by missing_interval; a partial sum says nothing more
    total = sum((s.value for s in ctx.slots if s.value is not None), Decimal(0))
    tolerance = max(ctx.config.register_sum_tolerance, ctx.config.register_sum_tolerance_ratio * delta)
    if abs(total - delta) <= tolerance:
        return None
    return _failure(
        c.REGISTER_SUM,
        [],
        f"interval total {total} differs from register delta {delta} by more than {tolerance}",
    )


def check_usage_vs_history(ctx: DayContext) -> RuleFailure | None:
    """Rule `usage_vs_history`: the day's final total against the mean of the last
    `usage_history_days` complete, outage-free history days of the same weekday (holidays count
    as Sundays); fails above `usage_high_factor` x or below `usage_low_factor` x that mean (the
    low check is skipped on a day with an outage). Day rule: values are kept."""
    config = ctx.config
    if any(s.value is None for s in ctx.slots):
        return None
    holidays = ctx.inputs.holidays
    target = day_type(ctx.inputs.local_day, holidays)
    horizon = ctx.inputs.local_day - timedelta(weeks=8)
    same = [
        h
        for h in ctx.history
        if horizon <= h.day < ctx.inputs.local_day
        and day_type(h.day, holidays) == target
        and h.complete
        and not h.had_outage
    ][: config.usage_history_days]
    if len(same) < config.usage_min_history_days:
        return None
    mean = sum((h.total for h in same), Decimal(0)) / len(same)
    total = sum((s.value for s in ctx.slots if s.value is not None), Decimal(0))
    if total > config.usage_high_factor * mean:
        return _failure(
            c.USAGE_VS_HISTORY, [], f"high usage: {total} against a mean of {mean:.3f} ({len(same)} days)"
        )
    had_outage = any(s.in_outage for s in ctx.slots)
    if not had_outage and total < config.usage_low_factor * mean:
        return _failure(
            c.USAGE_VS_HISTORY, [], f"low usage: {total} against a mean of {mean:.3f} ({len(same)} days)"
        )
    return None
