"""The theft/tamper suspicion score of a meter (0-100) with the facts that make it up.

A screening aid for a utility's revenue-protection team, not evidence: it adds weighted
indicators — tamper alarms (cover opened, magnetic field), reverse energy, phase loss, the
derived alarms that point at a bypass (current without metered energy, energy with a phase at
zero voltage) and a drop of the recent consumption against the meter's own history — and lists
each with its weight, so the team sees *why* a meter ranks high. The weights follow the common
order of evidence in non-technical-loss screening (physical tamper first, then electrical
anomalies, then consumption patterns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hemera.domain.alarms.catalog import AlarmType, spec_of
from hemera.domain.alarms.lifecycle import Alarm
from hemera.domain.alarms.thresholds import AlarmThresholds

# Points per indicator; an alarm still open counts in full, a closed one (within the window) half.
WEIGHTS: Mapping[AlarmType, int] = {
    AlarmType.COVER_OPEN: 30,
    AlarmType.MAGNETIC_TAMPER: 35,
    AlarmType.REVERSE_ENERGY: 20,
    AlarmType.PHASE_LOSS: 10,
    AlarmType.CURRENT_WITHOUT_ENERGY: 25,
    AlarmType.ENERGY_WITHOUT_VOLTAGE: 25,
}
CONSUMPTION_DROP_WEIGHT = 30  # reached at a drop of 100 %; scaled from the threshold up
MAX_SCORE = 100
# Days compared: the recent week against the four weeks before it.
RECENT_DAYS = 7
HISTORY_DAYS = 28


@dataclass(frozen=True, slots=True)
class TheftFact:
    kind: str  # the alarm type, or "consumption_drop"
    points: int
    description: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TheftScore:
    meter_id: str
    score: int
    level: str  # low | medium | high
    computed_at: datetime
    facts: tuple[TheftFact, ...]


def level_of(score: int) -> str:
    return "high" if score >= 60 else "medium" if score >= 30 else "low"


def consumption_drop(
    daily_kwh: Mapping[date, Decimal], today: date
) -> tuple[Decimal, Decimal, Decimal] | None:
    """(recent mean, history mean, drop as a fraction) of daily consumption: the `RECENT_DAYS`
    before `today` against the `HISTORY_DAYS` before those. None without enough history (half of
    each window) or without consumption in the history."""
    recent = [v for d, v in daily_kwh.items() if 1 <= (today - d).days <= RECENT_DAYS]
    history = [
        v for d, v in daily_kwh.items() if RECENT_DAYS < (today - d).days <= RECENT_DAYS + HISTORY_DAYS
    ]
    if len(recent) < RECENT_DAYS // 2 or len(history) < HISTORY_DAYS // 2:
        return None
    recent_mean = sum(recent, Decimal(0)) / len(recent)
    history_mean = sum(history, Decimal(0)) / len(history)
    if history_mean <= 0:
        return None
    drop = max(Decimal(0), 1 - recent_mean / history_mean)
    return recent_mean, history_mean, drop


def theft_score(
    meter_id: str,
    alarms: Iterable[Alarm],
    daily_kwh: Mapping[date, Decimal],
    now: datetime,
    thresholds: AlarmThresholds,
) -> TheftScore:
    """Score a meter from its alarms of the scoring window (the caller passes those last seen in
    the window) and its daily consumption. Each alarm type counts once, by its strongest alarm."""
    best: dict[AlarmType, TheftFact] = {}
    for alarm in alarms:
        weight = WEIGHTS.get(alarm.type)
        if weight is None or not spec_of(alarm.type).theft_indicator:
            continue
        points = weight if alarm.is_active else weight // 2
        fact = TheftFact(
            kind=alarm.type.value,
            points=points,
            description=f"{alarm.type.value.replace('_', ' ')} alarm ({alarm.state.value}), seen {alarm.count} times",
            evidence={
                "alarm_id": alarm.alarm_id,
                "state": alarm.state.value,
                "first_seen": alarm.first_seen.isoformat(),
                "last_seen": alarm.last_seen.isoformat(),
                "count": alarm.count,
            },
        )
        if alarm.type not in best or best[alarm.type].points < points:
            best[alarm.type] = fact
    facts: list[TheftFact] = [best[t] for t in sorted(best, key=lambda t: t.value)]
    drop = consumption_drop(daily_kwh, now.date())
    if drop is not None and drop[2] >= thresholds.consumption_drop:
        recent_mean, history_mean, fraction = drop
        points = round(CONSUMPTION_DROP_WEIGHT * float(fraction))
        facts.append(
            TheftFact(
                kind="consumption_drop",
                points=points,
                description=f"daily consumption down {fraction * 100:.0f} % against the {HISTORY_DAYS} days before",
                evidence={
                    "recent_daily_kwh": str(recent_mean.quantize(Decimal("0.001"))),
                    "history_daily_kwh": str(history_mean.quantize(Decimal("0.001"))),
                    "drop_pct": str((fraction * 100).quantize(Decimal("0.1"))),
                    "threshold_pct": str(thresholds.consumption_drop * 100),
                },
            )
        )
    score = min(MAX_SCORE, sum(f.points for f in facts))
    return TheftScore(meter_id, score, level_of(score), now, tuple(facts))


def daily_totals(values: Sequence[tuple[date, Decimal]]) -> dict[date, Decimal]:
    """Sum (day, kWh) pairs per day."""
    totals: dict[date, Decimal] = {}
    for day, value in values:
        totals[day] = totals.get(day, Decimal(0)) + value
    return totals
