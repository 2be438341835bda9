"""Builders for VEE engine tests: a meter's day of readings, history days, registers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hemera.domain.final_series import FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.registers import RegisterReading
from hemera.domain.vee import VeeConfig, VeeInputs, VeeOutcome, validate_estimate_edit
from hemera.domain.vee.calendar import day_bounds, day_grid

METER = "m-1"
CHANNEL = Channel.ACTIVE_IMPORT
ZONE = "America/Sao_Paulo"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
MONDAY = date(2026, 3, 16)  # an ordinary Monday in São Paulo (no DST since 2019)


def grid(day: date = MONDAY, zone: str = ZONE, minutes: int = 15) -> tuple[datetime, ...]:
    return day_grid(day, zone, minutes)


def readings(
    values: Mapping[int, Decimal | str | int] | Iterable[Decimal | str | int | None],
    day: date = MONDAY,
    zone: str = ZONE,
    minutes: int = 15,
    flags: Mapping[int, int] | None = None,
) -> list[IntervalReading]:
    """Readings for the day's intervals by index; None (or an index left out) = not sent."""
    starts = grid(day, zone, minutes)
    by_index = dict(values) if isinstance(values, Mapping) else dict(enumerate(values))
    return [
        IntervalReading(
            meter_id=METER,
            channel=CHANNEL,
            start=starts[i],
            length_minutes=minutes,
            value=Decimal(str(v)),
            unit=Unit.KWH,
            meter_flags=(flags or {}).get(i, 0),
        )
        for i, v in sorted(by_index.items())
        if v is not None
    ]


def flat(value: str | int = 10, day: date = MONDAY, zone: str = ZONE, minutes: int = 15) -> list:
    """Every interval of the day at `value` (a list the test then changes by index)."""
    return [value] * len(grid(day, zone, minutes))


def history_day(
    day: date,
    values: Iterable[Decimal | str | int | None] | Decimal | str | int,
    zone: str = ZONE,
    minutes: int = 15,
    status: FinalStatus = FinalStatus.ACTUAL,
    reason: int | None = None,
) -> FinalDay:
    """A stored final day of history: every interval at the given values (or one value)."""
    starts = grid(day, zone, minutes)
    if isinstance(values, str | int | Decimal):
        values = [values] * len(starts)
    intervals = tuple(
        FinalInterval(
            start=s,
            length_minutes=minutes,
            value=None if v is None else Decimal(str(v)),
            raw_value=None if v is None else Decimal(str(v)),
            status=status if v is not None else FinalStatus.FAILED,
            quality_flag=QualityFlag.ACTUAL if v is not None else QualityFlag.NULL,
            espi_quality=0,
            reason_code=reason,
        )
        for s, v in zip(starts, values, strict=True)
    )
    return FinalDay(METER, CHANNEL, day, zone, minutes, 1, intervals, NOW)


def day_registers(start_value: str | int, end_value: str | int, day: date = MONDAY, zone: str = ZONE) -> list:
    start, end = day_bounds(day, zone)
    return [
        RegisterReading(METER, CHANNEL, start, Decimal(str(start_value))),
        RegisterReading(METER, CHANNEL, end, Decimal(str(end_value))),
    ]


def inputs(
    sent: list[IntervalReading], day: date = MONDAY, zone: str = ZONE, minutes: int = 15, **fields: Any
) -> VeeInputs:
    return VeeInputs(
        meter_id=METER,
        channel=CHANNEL,
        local_day=day,
        timezone=zone,
        interval_minutes=minutes,
        readings=sent,
        **fields,
    )


def run(given: VeeInputs, config: VeeConfig | None = None, cause: str = "ingest") -> VeeOutcome:
    return validate_estimate_edit(given, config or VeeConfig(), NOW, cause)


def failure(outcome: VeeOutcome, rule_id: str):
    return next((f for f in outcome.failures if f.rule_id == rule_id), None)


def rerun(given: VeeInputs, first: VeeOutcome, config: VeeConfig | None = None) -> VeeOutcome:
    return run(replace(given, previous=first.day), config)
