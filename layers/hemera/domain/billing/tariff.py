"""A meter's tariff as billing needs it: its time-of-use calendar, the determinant rules and the
customer's contracted demand per post. Built from the tenant file at `tenant apply` and kept on
the registered meter (`hemera.domain.registry.Meter.tariff`), so billing reads it with the meter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

from hemera.domain.billing.tou import PostWindow, TouCalendar

# The key of a single demand when the tariff bills one demand for all posts (e.g. A4 verde).
ALL_POSTS = "all"
# ANEEL's reference power factor fR (REN 414/1000).
PF_REFERENCE = Decimal("0.92")
# Overrun: measured demand above contract by more than 5 % (REN 414/1000).
OVERRUN_TOLERANCE = Decimal("0.05")

_LATEST_CAPACITIVE_START = 30  # 00:30: a 6-hour window from then ends at 06:30
_EARLIEST_CAPACITIVE_START = 23 * 60 + 30  # 23:30


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


@dataclass(frozen=True, slots=True)
class BillingRules:
    """The determinant rules of a tariff (REN 414/1000 as REFERENCE.md words them).

    `pf_reference` is fR (0.92). `capacitive_start` opens the `capacitive_hours` (6) window in
    which only capacitive reactive energy counts; it lies inside 23:30-06:30 and inductive reactive
    energy counts in every other hour. `demand_interval_minutes` is the demand integration
    interval (15 min). `overrun_tolerance` (5 %) decides whether the overrun charge applies.
    `demand_per_post` is True when each post has its own contracted and billed demand (azul) and
    False for a single demand over all posts (verde)."""

    pf_reference: Decimal = PF_REFERENCE
    capacitive_start: time = time(0)
    capacitive_hours: int = 6
    demand_interval_minutes: int = 15
    overrun_tolerance: Decimal = OVERRUN_TOLERANCE
    demand_per_post: bool = True

    def __post_init__(self) -> None:
        if not Decimal(0) < self.pf_reference <= Decimal(1):
            raise ValueError("the reference power factor lies in (0, 1]")
        start = _minutes(self.capacitive_start)
        offset = (start - _EARLIEST_CAPACITIVE_START) % 1440  # minutes after 23:30
        if self.capacitive_hours < 1 or offset + self.capacitive_hours * 60 > 7 * 60:
            raise ValueError("the capacitive window must lie inside 23:30-06:30")
        if self.demand_interval_minutes not in (5, 10, 15, 30, 60):
            raise ValueError("the demand integration interval divides an hour (5, 10, 15, 30 or 60 min)")

    def is_capacitive_hour(self, hour_start_local: time) -> bool:
        """Whether the clock hour starting at `hour_start_local` is in the capacitive window: its
        mid-point lies in `[capacitive_start, capacitive_start + capacitive_hours)`. A window
        starting on a half hour (23:30, 00:30) thus holds exactly `capacitive_hours` clock hours."""
        mid = _minutes(hour_start_local) + 30
        return (mid - _minutes(self.capacitive_start)) % 1440 < self.capacitive_hours * 60


@dataclass(frozen=True, slots=True)
class MeterTariff:
    """What billing needs of one meter: its tariff's calendar and rules, the reading day of the
    billing cycle (1-28), and the contracted demand per post (kW; key `ALL_POSTS` when the
    tariff bills a single demand)."""

    tariff_id: str
    name: str
    calendar: TouCalendar
    rules: BillingRules = field(default_factory=BillingRules)
    reading_day: int = 1
    contracted_demand_kw: tuple[tuple[str, Decimal], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.reading_day <= 28:
            raise ValueError("reading day must be 1-28")

    @property
    def demand_posts(self) -> tuple[str, ...]:
        """The posts that have a billed demand: every post (azul) or `ALL_POSTS` (verde)."""
        return self.calendar.posts if self.rules.demand_per_post else (ALL_POSTS,)

    def contracted(self, post: str) -> Decimal | None:
        return dict(self.contracted_demand_kw).get(post)

    def document(self) -> dict[str, Any]:
        """A JSON-ready form (the registry stores it with the meter)."""
        cal, rules = self.calendar, self.rules
        return {
            "tariff_id": self.tariff_id,
            "name": self.name,
            "reading_day": self.reading_day,
            "contracted_demand_kw": {post: str(kw) for post, kw in self.contracted_demand_kw},
            "calendar": {
                "timezone": cal.timezone,
                "windows": [
                    {
                        "post": w.post,
                        "start": w.start.isoformat("minutes"),
                        "hours": w.hours,
                        "business_days_only": w.business_days_only,
                    }
                    for w in cal.windows
                ],
                "default_post": cal.default_post,
                "business_days": sorted(cal.business_days),
                "holiday_country": cal.holiday_country,
                "holiday_subdivision": cal.holiday_subdivision,
                "extra_holidays": sorted(d.isoformat() for d in cal.extra_holidays),
            },
            "rules": {
                "pf_reference": str(rules.pf_reference),
                "capacitive_start": rules.capacitive_start.isoformat("minutes"),
                "capacitive_hours": rules.capacitive_hours,
                "demand_interval_minutes": rules.demand_interval_minutes,
                "overrun_tolerance": str(rules.overrun_tolerance),
                "demand_per_post": rules.demand_per_post,
            },
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> MeterTariff:
        cal, rules = doc["calendar"], doc["rules"]
        return cls(
            tariff_id=str(doc["tariff_id"]),
            name=str(doc["name"]),
            reading_day=int(doc["reading_day"]),
            contracted_demand_kw=tuple((p, Decimal(kw)) for p, kw in doc["contracted_demand_kw"].items()),
            calendar=TouCalendar(
                timezone=cal["timezone"],
                windows=tuple(
                    PostWindow(
                        w["post"],
                        time.fromisoformat(w["start"]),
                        int(w["hours"]),
                        bool(w["business_days_only"]),
                    )
                    for w in cal["windows"]
                ),
                default_post=cal["default_post"],
                business_days=frozenset(int(d) for d in cal["business_days"]),
                holiday_country=cal["holiday_country"],
                holiday_subdivision=cal["holiday_subdivision"],
                extra_holidays=frozenset(date.fromisoformat(d) for d in cal["extra_holidays"]),
            ),
            rules=BillingRules(
                pf_reference=Decimal(rules["pf_reference"]),
                capacitive_start=time.fromisoformat(rules["capacitive_start"]),
                capacitive_hours=int(rules["capacitive_hours"]),
                demand_interval_minutes=int(rules["demand_interval_minutes"]),
                overrun_tolerance=Decimal(rules["overrun_tolerance"]),
                demand_per_post=bool(rules["demand_per_post"]),
            ),
        )
