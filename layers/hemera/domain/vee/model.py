"""The VEE engine's inputs and outcome: what the VEE service hands in and stores back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from hemera.domain.final_series import FinalDay, FinalDayChange, FinalStatus
from hemera.domain.meter_events import MeterEvent, Outage
from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registers import RegisterReading


@dataclass(frozen=True)
class IntervalEdit:
    """An operator's manual edit of one interval: `start` is the interval's aligned UTC start,
    `value` the final value in the channel's unit, `at` when the edit was made (UTC). The latest
    edit (by `at`) of an interval wins; an edit wins over every rule and estimator."""

    start: datetime
    value: Decimal
    reason: str
    user: str
    at: datetime


@dataclass(frozen=True)
class VeeInputs:
    """Everything the engine needs to compute one meter, channel and tenant-local day.

    `readings` are what the meter sent for the day (any gaps; readings outside the day or of
    another meter/channel are ignored). `history` are earlier FINAL days of the same meter and
    channel (the last 8 weeks and the same weekday ±7 days one year earlier). `registers` are the
    channel's cumulative register readings around the day; `events`/`outages` the meter's device
    events of the day and the outages overlapping it; `edits` the operator edits of the day's
    intervals; `holidays` the tenant's public holidays (treated as Sundays); `max_demand_kw` the
    meter's demand limit (contracted demand x a margin) or None; `previous` the stored final day.
    """

    meter_id: str
    channel: Channel
    local_day: date
    timezone: str
    interval_minutes: int
    readings: Sequence[IntervalReading]
    history: Sequence[FinalDay] = ()
    registers: Sequence[RegisterReading] = ()
    events: Sequence[MeterEvent] = ()
    outages: Sequence[Outage] = ()
    edits: Sequence[IntervalEdit] = ()
    holidays: frozenset[date] = frozenset()
    max_demand_kw: Decimal | None = None
    previous: FinalDay | None = None


@dataclass(frozen=True)
class RuleFailure:
    """One validation rule that failed on the day: `starts` are the UTC starts of the intervals it
    flagged (empty for a whole-day check such as the register sum)."""

    rule_id: str
    rule_version: int
    starts: tuple[datetime, ...]
    message: str


@dataclass(frozen=True)
class VeeOutcome:
    """The engine's result. `day` is a new version when anything differs from `previous` (values
    or provenance), else `previous` itself (`changed` False). `missing` are the UTC `[start, end)`
    ranges the meter never sent (whether estimated or not), for re-read requests."""

    day: FinalDay
    changed: bool
    failures: tuple[RuleFailure, ...]
    missing: tuple[tuple[datetime, datetime], ...]

    @property
    def failed_rules(self) -> tuple[str, ...]:
        """Ids of the failed rules, in the order they ran (for `FinalDayChange.failed_rules`)."""
        return tuple(f.rule_id for f in self.failures)

    def change(self) -> FinalDayChange:
        """The `FinalDaysChanged` entry of this outcome's day (meaningful when `changed`)."""
        day = self.day
        return FinalDayChange(
            meter_id=day.meter_id,
            channel=day.channel,
            local_day=day.local_day,
            version=day.version,
            previous_version=None if day.version == 1 else day.version - 1,
            cause=day.cause,
            failed_rules=self.failed_rules,
            estimated=sum(1 for i in day.intervals if i.status is FinalStatus.ESTIMATED),
            missing=sum(1 for i in day.intervals if i.value is None),
        )
