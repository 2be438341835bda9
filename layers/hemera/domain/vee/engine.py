"""The VEE engine: one meter, channel and tenant-local day in, its final day out.

Order of work: grid of the local day → outages and clock events → per-interval rules → operator
edits → the estimation ladder for what must be substituted → scaling to the register → day rules
→ a new `FinalDay` version only when something differs from the stored one. The engine is a pure
function of its inputs, so running it again on the same inputs changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from hemera.domain.final_series import (
    ESPI_DERIVED,
    ESPI_EDITED,
    ESPI_QUESTIONABLE,
    ESPI_VALID,
    FinalDay,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.vee import catalog as c
from hemera.domain.vee import rules
from hemera.domain.vee.config import VeeConfig
from hemera.domain.vee.context import DayContext, Slot, build_context
from hemera.domain.vee.estimators import run_ladder, scale_to_register
from hemera.domain.vee.model import IntervalEdit, RuleFailure, VeeInputs, VeeOutcome

Rule = Callable[[DayContext], RuleFailure | None]

# Per-interval rules in the order they run: the first substituting rule an interval fails names
# it; kept rules only look at values no substituting rule took.
_INTERVAL_RULES: tuple[tuple[str, Rule], ...] = (
    (c.INTERVAL_COUNT, rules.check_interval_count),
    (c.MISSING_INTERVAL, rules.check_missing),
    (c.NEGATIVE_VALUE, rules.check_negative),
    (c.IMPLAUSIBLE_VALUE, rules.check_implausible),
    (c.SPIKE, rules.check_spike),
    (c.ZERO_WITH_REGISTER_ADVANCE, rules.check_zero_with_register_advance),
    (c.CLOCK_EVENT, rules.check_clock_event),
    (c.MAX_DEMAND, rules.check_max_demand),
)
_DAY_RULES: tuple[tuple[str, Rule], ...] = (
    (c.REGISTER_SUM, rules.check_register_sum),
    (c.USAGE_VS_HISTORY, rules.check_usage_vs_history),
)


def latest_edits(edits: list[IntervalEdit] | tuple[IntervalEdit, ...]) -> dict[datetime, IntervalEdit]:
    """The edit that counts for each interval: the latest by `at` (ties: the later in the list)."""
    latest: dict[datetime, IntervalEdit] = {}
    for edit in edits:
        known = latest.get(edit.start)
        if known is None or edit.at >= known.at:
            latest[edit.start] = edit
    return latest


def _set(slot: Slot, rule_id: str | None, **fields: object) -> None:
    for name, value in fields.items():
        setattr(slot, name, value)
    slot.rule_id = rule_id
    slot.rule_version = None if rule_id is None else c.RULE_VERSIONS[rule_id]


def _initial_provenance(ctx: DayContext) -> None:
    """Provenance before estimation: actual, kept-but-failed, waiting for an estimate, or the
    zero of an outage interval the meter did not record."""
    for slot in ctx.slots:
        if slot.substitute is not None:
            rule_id, reason = slot.substitute
            quality = QualityFlag.NULL if slot.raw is None else QualityFlag.ACTUAL
            _set(
                slot,
                rule_id,
                value=slot.raw,
                status=FinalStatus.FAILED,
                quality=quality,
                espi=ESPI_QUESTIONABLE,
                reason=reason,
            )
        elif slot.raw is None:  # wholly inside an outage
            if ctx.config.outage_zero_fill:
                _set(
                    slot,
                    c.OUTAGE_ZERO,
                    value=Decimal(0),
                    status=FinalStatus.ESTIMATED,
                    quality=QualityFlag.SUBSTITUTE,
                    espi=ESPI_DERIVED,
                    method=c.METHOD_ZERO,
                    reason=c.REASON_POWER_OUTAGE,
                )
            else:
                _set(
                    slot,
                    c.MISSING_INTERVAL,
                    value=None,
                    status=FinalStatus.FAILED,
                    quality=QualityFlag.NULL,
                    espi=ESPI_QUESTIONABLE,
                    reason=c.REASON_POWER_OUTAGE,
                )
        elif slot.kept is not None:
            rule_id, reason = slot.kept
            _set(
                slot,
                rule_id,
                value=slot.raw,
                status=FinalStatus.FAILED,
                quality=QualityFlag.ACTUAL,
                espi=ESPI_QUESTIONABLE,
                reason=reason,
            )
        elif slot.in_outage:
            _set(
                slot,
                c.OUTAGE,
                value=slot.raw,
                status=FinalStatus.ACTUAL,
                quality=QualityFlag.ACTUAL,
                espi=ESPI_VALID,
                reason=c.REASON_POWER_OUTAGE_ALARM,
            )
        else:
            _set(
                slot,
                None,
                value=slot.raw,
                status=FinalStatus.ACTUAL,
                quality=QualityFlag.ACTUAL,
                espi=ESPI_VALID,
                reason=None,
            )


def _apply_edits(ctx: DayContext) -> tuple[str | None, tuple[str, ...]]:
    """Edits win over everything (status edited, ESPI 7, NEM12 quality F: a final substitute an
    operator set); the meter's raw value stays. Returns the last editor and one note per edit."""
    by_start = {slot.start: slot for slot in ctx.slots}
    notes = []
    last: IntervalEdit | None = None
    for start, edit in sorted(latest_edits(tuple(ctx.inputs.edits)).items()):
        slot = by_start.get(start)
        if slot is None:
            continue  # not an interval of this day
        _set(
            slot,
            c.EDIT,
            value=edit.value,
            status=FinalStatus.EDITED,
            quality=QualityFlag.FINAL_SUBSTITUTE,
            espi=ESPI_EDITED,
            method=None,
            reason=None,
        )
        slot.substitute = None
        notes.append(f"{start.isoformat()} edited by {edit.user} at {edit.at.isoformat()}: {edit.reason}")
        if last is None or edit.at >= last.at:
            last = edit
    return (None if last is None else last.user), tuple(notes)


def _missing_ranges(ctx: DayContext) -> tuple[tuple[datetime, datetime], ...]:
    step = timedelta(minutes=ctx.minutes)
    ranges: list[tuple[datetime, datetime]] = []
    for slot in ctx.slots:
        if slot.raw is not None:
            continue
        if ranges and ranges[-1][1] == slot.start:
            ranges[-1] = (ranges[-1][0], slot.start + step)
        else:
            ranges.append((slot.start, slot.start + step))
    return tuple(ranges)


def _interval(ctx: DayContext, slot: Slot) -> FinalInterval:
    return FinalInterval(
        start=slot.start,
        length_minutes=ctx.minutes,
        value=slot.value,
        raw_value=slot.raw,
        status=slot.status,
        quality_flag=slot.quality,
        espi_quality=slot.espi,
        method_flag=slot.method,
        reason_code=slot.reason,
        rule_id=slot.rule_id,
        rule_version=slot.rule_version,
    )


def validate_estimate_edit(inputs: VeeInputs, config: VeeConfig, now: datetime, cause: str) -> VeeOutcome:
    """Validate, estimate and edit one meter-channel-day (README "VEE: validation, estimation,
    editing"). Returns the final day — a new version only when its values or provenance differ
    from `inputs.previous` — the failed rules and the ranges the meter never sent."""
    ctx = build_context(inputs, config)
    if config.enabled(c.OUTAGE):
        rules.mark_outages(ctx)
    if config.enabled(c.CLOCK_EVENT):
        rules.mark_clock_suspects(ctx)
    failures: list[RuleFailure] = []
    for rule_id, rule in _INTERVAL_RULES:
        if config.enabled(rule_id):
            failure = rule(ctx)
            if failure is not None:
                failures.append(failure)
    _initial_provenance(ctx)
    edited_by, notes = _apply_edits(ctx)
    run_ladder(ctx)
    if config.scale_to_register:
        scale_to_register(ctx)
    for rule_id, rule in _DAY_RULES:
        if config.enabled(rule_id):
            failure = rule(ctx)
            if failure is not None:
                failures.append(failure)
    intervals = tuple(_interval(ctx, slot) for slot in ctx.slots)
    previous = inputs.previous
    outcome_failures, missing = tuple(failures), _missing_ranges(ctx)
    if (
        previous is not None
        and previous.intervals == intervals
        and previous.interval_minutes == inputs.interval_minutes
        and previous.timezone == inputs.timezone
        and previous.edited_by == edited_by
        and previous.notes == notes
    ):
        return VeeOutcome(day=previous, changed=False, failures=outcome_failures, missing=missing)
    day = FinalDay(
        meter_id=inputs.meter_id,
        channel=inputs.channel,
        local_day=inputs.local_day,
        timezone=inputs.timezone,
        interval_minutes=inputs.interval_minutes,
        version=1 if previous is None else previous.version + 1,
        intervals=intervals,
        computed_at=now,
        cause=cause,
        edited_by=edited_by,
        notes=notes,
    )
    return VeeOutcome(day=day, changed=True, failures=outcome_failures, missing=missing)
