"""Billing determinants of one meter and billing cycle, from the final (VEE'd) series only.

Terms of ANEEL REN 414/2010 (carried into REN 1000/2021) as REFERENCE.md words them:

- **energy per post** (kWh): Σ active import of the intervals whose start lies in the post;
- **maximum demand per post** (kW): the largest block demand over the tariff's integration
  interval (15 min): kW = kWh of the block x 60 / minutes;
- **billed demand** = max(measured, contracted); **overrun**: when the measured demand exceeds
  the contracted one by more than the tolerance (5 %), the *whole* excess (measured - contracted)
  is the overrun (charged at 2x the demand tariff; the tolerance only decides whether it applies);
- **excess reactive energy** over the 1-hour intervals T with power factor fT below fR (0.92):
  ERE = Σ_T EEAM_T x (fR / fT - 1), in kWh (the bill multiplies it by VRERE);
- **excess reactive demand** per post p: DRE(p) = max_T (PAM_T x fR / fT) - PAF(p), in kW, over the
  hours with fT < fR of the post, floored at 0 (PAF(p) is the billed demand); per calendar post
  for verde too (REN 1000 Art. 304 defines DRE "por posto tarifário" for the hourly modalities),
  each set against verde's single billed demand;
- in the tariff's capacitive window (6 h inside 23:30-06:30) only capacitive reactive energy
  (R-, `reactive_export`) counts; in every other hour only inductive (R+, `reactive_import`);
- **total reactive energy** (kvarh) of each reactive channel.

With P and Q the active and reactive energy of an hour, fT = P / √(P² + Q²), so
EEAM_T x (fR/fT - 1) = fR·√(P² + Q²) - P and PAM_T x fR/fT = fR·√(P² + Q²) (kW, 1-hour interval):
the code uses these forms, which need no intermediate rounding. An hour without active energy
has no defined fT and is not charged (counted in `hours_without_load`).

Nothing is invented: a missing interval (no value) is counted, never filled; an hour or demand
block with a missing interval is not evaluated; a post without any interval reports `None`.
Every determinant carries the `Coverage` of the intervals behind it, from `FinalInterval.status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hemera.domain.billing.cycle import BillingCycle
from hemera.domain.billing.tariff import ALL_POSTS, MeterTariff
from hemera.domain.billing.tou import post_of
from hemera.domain.final_series import FinalDay, FinalInterval, FinalStatus

DEFAULT_INTERVAL_MINUTES = 15
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Coverage:
    """How the intervals behind a determinant stand: of `expected` intervals, how many were
    actual, estimated, edited, failed validation but kept their value, or missing (no value).
    Shares are fractions of `expected` (0 when nothing was expected)."""

    expected: int = 0
    actual: int = 0
    estimated: int = 0
    edited: int = 0
    failed: int = 0
    missing: int = 0

    @property
    def intervals(self) -> int:
        """Intervals with a value."""
        return self.actual + self.estimated + self.edited + self.failed

    def _share(self, count: int) -> Decimal:
        return Decimal(count) / Decimal(self.expected) if self.expected else Decimal(0)

    @property
    def share_estimated(self) -> Decimal:
        return self._share(self.estimated)

    @property
    def share_edited(self) -> Decimal:
        return self._share(self.edited)

    @property
    def share_present(self) -> Decimal:
        return self._share(self.intervals)


def _status_of(intervals: Sequence[FinalInterval | None]) -> str:
    """The status of a slot made of one interval per channel used: missing if one has no value,
    else the least trustworthy of edited, estimated, failed and actual."""
    if any(i is None or i.value is None for i in intervals):
        return "missing"
    statuses = {i.status for i in intervals if i is not None}
    for status, name in (
        (FinalStatus.EDITED, "edited"),
        (FinalStatus.ESTIMATED, "estimated"),
        (FinalStatus.FAILED, "failed"),
    ):
        if status in statuses:
            return name
    return "actual"


def _coverage(statuses: Iterable[str]) -> Coverage:
    counts = {"actual": 0, "estimated": 0, "edited": 0, "failed": 0, "missing": 0}
    for status in statuses:
        counts[status] += 1
    return Coverage(expected=sum(counts.values()), **counts)


@dataclass(frozen=True, slots=True)
class EnergyDeterminant:
    """Active energy of one post (kWh); None when no interval of the post has a value."""

    post: str
    kwh: Decimal | None
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class DemandDeterminant:
    """Demand of one post (`ALL_POSTS` for a single-demand tariff).

    `measured_kw` is the maximum block demand and `at` the UTC start of its block (the earliest
    on a tie); `billed_kw` = max(measured, contracted); `overrun_kw` the whole excess over the
    contract when it passes the tolerance, else 0 (None without a contract or a measurement);
    `incomplete_blocks` counts integration blocks left out because an interval was missing."""

    post: str
    measured_kw: Decimal | None
    at: datetime | None
    contracted_kw: Decimal | None
    billed_kw: Decimal | None
    overrun_kw: Decimal | None
    incomplete_blocks: int
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class ExcessReactiveEnergy:
    """ERE (kWh) over the evaluated hours with fT < fR. `coverage` counts slots of active import
    paired with the reactive channel that applies to their hour."""

    kwh: Decimal
    hours_expected: int
    hours_evaluated: int
    hours_below_reference: int
    hours_without_load: int
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class ExcessReactiveDemand:
    """DRE(p) (kW). `corrected_kw` = max over the post's hours with fT < fR of PAM_T x fR / fT
    (None when no such hour), `at` the UTC start of that hour, `billed_kw` = PAF(p)."""

    post: str
    corrected_kw: Decimal | None
    at: datetime | None
    billed_kw: Decimal | None
    kw: Decimal | None
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class ReactiveEnergyTotal:
    """Total reactive energy of one channel over the cycle (kvarh); None without any value."""

    kind: str  # "inductive" (R+, reactive_import) or "capacitive" (R-, reactive_export)
    kvarh: Decimal | None
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class BillingDeterminants:
    cycle: BillingCycle
    tariff: MeterTariff
    interval_minutes: int
    energy: tuple[EnergyDeterminant, ...]
    demand: tuple[DemandDeterminant, ...]
    excess_reactive_energy: ExcessReactiveEnergy
    excess_reactive_demand: tuple[ExcessReactiveDemand, ...]
    reactive_energy: tuple[ReactiveEnergyTotal, ...]


def _by_start(days: Iterable[FinalDay], start: datetime, end: datetime) -> dict[datetime, FinalInterval]:
    return {
        i.start.astimezone(UTC): i
        for day in days
        for i in day.intervals
        if start <= i.start.astimezone(UTC) < end
    }


def _interval_minutes(*series: Sequence[FinalDay]) -> int:
    for days in series:
        for day in days:
            return day.interval_minutes
    return DEFAULT_INTERVAL_MINUTES


def _floor(instant: datetime, minutes: int) -> datetime:
    step = timedelta(minutes=minutes)
    return _EPOCH + ((instant - _EPOCH) // step) * step


def _local_hour(instant: datetime, tariff: MeterTariff) -> datetime:
    """The UTC start of the local clock hour holding `instant` (`replace` keeps the DST fold)."""
    local = instant.astimezone(tariff.calendar.zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def _overrun(measured: Decimal, contracted: Decimal, tolerance: Decimal) -> Decimal:
    """REN 414/1000: the whole excess over the contract, when it passes the tolerance."""
    return measured - contracted if measured > contracted * (1 + tolerance) else Decimal(0)


def _demand(
    tariff: MeterTariff,
    slots: Sequence[datetime],
    slot_post: dict[datetime, str],
    active: dict[datetime, FinalInterval],
    minutes: int,
) -> tuple[DemandDeterminant, ...]:
    integration = tariff.rules.demand_interval_minutes
    if integration % minutes:
        raise ValueError(f"{minutes}-minute intervals cannot be integrated over {integration} minutes")
    blocks: dict[datetime, list[datetime]] = {}
    for slot in slots:
        blocks.setdefault(_floor(slot, integration), []).append(slot)
    per_block = integration // minutes
    best: dict[str, tuple[Decimal, datetime]] = {}
    incomplete: dict[str, int] = {}
    for block, members in blocks.items():
        post = slot_post[members[0]] if tariff.rules.demand_per_post else ALL_POSTS
        values = [active[s].value if s in active else None for s in members]
        if len(members) < per_block or any(v is None for v in values):
            incomplete[post] = incomplete.get(post, 0) + 1
            continue
        kw = sum((v for v in values if v is not None), Decimal(0)) * 60 / integration
        if post not in best or kw > best[post][0]:
            best[post] = (kw, block)
    results = []
    for post in tariff.demand_posts:
        in_post = [s for s in slots if post == ALL_POSTS or slot_post[s] == post]
        measured, at = best.get(post, (None, None))
        contracted = tariff.contracted(post)
        billed = None if measured is None else max(measured, contracted or Decimal(0))
        overrun = (
            None
            if measured is None or contracted is None
            else _overrun(measured, contracted, tariff.rules.overrun_tolerance)
        )
        results.append(
            DemandDeterminant(
                post=post,
                measured_kw=measured,
                at=at,
                contracted_kw=contracted,
                billed_kw=billed,
                overrun_kw=overrun,
                incomplete_blocks=incomplete.get(post, 0),
                coverage=_coverage(_status_of([active.get(s)]) for s in in_post),
            )
        )
    return tuple(results)


def billing_determinants(
    cycle: BillingCycle,
    tariff: MeterTariff,
    active_import: Sequence[FinalDay],
    reactive_import: Sequence[FinalDay],
    reactive_export: Sequence[FinalDay],
) -> BillingDeterminants:
    """The determinants of one meter over `cycle` under `tariff`, from its final days of active
    import (kWh), reactive import (R+, inductive kvarh) and reactive export (R-, capacitive
    kvarh). Intervals outside the cycle are ignored; see the module docstring for each formula."""
    minutes = _interval_minutes(active_import, reactive_import, reactive_export)
    if 60 % minutes:
        raise ValueError(f"{minutes}-minute intervals do not divide an hour")
    start, end = cycle.start, cycle.end
    active = _by_start(active_import, start, end)
    inductive = _by_start(reactive_import, start, end)
    capacitive = _by_start(reactive_export, start, end)
    calendar, rules = tariff.calendar, tariff.rules

    step = timedelta(minutes=minutes)
    slots: list[datetime] = []
    cursor = _floor(start, minutes)
    while cursor < end:
        if cursor >= start:
            slots.append(cursor)
        cursor += step
    slot_post = {s: post_of(s, calendar) for s in slots}

    energy = []
    for post in calendar.posts:
        found = [active.get(s) for s in slots if slot_post[s] == post]
        values = [i.value for i in found if i is not None and i.value is not None]
        energy.append(
            EnergyDeterminant(
                post,
                sum(values, Decimal(0)) if values else None,
                _coverage(_status_of([i]) for i in found),
            )
        )

    demand = _demand(tariff, slots, slot_post, active, minutes)
    billed = {d.post: d.billed_kw for d in demand}

    # Hourly power factor (the ANEEL hourly rule): each clock hour uses the reactive channel of
    # its window (capacitive inside the tariff's window, inductive elsewhere).
    hours: dict[datetime, list[datetime]] = {}
    for slot in slots:
        hours.setdefault(_local_hour(slot, tariff), []).append(slot)
    fr = rules.pf_reference
    ere = Decimal(0)
    evaluated = below = without_load = 0
    slot_status: dict[datetime, str] = {}
    worst: dict[str, tuple[Decimal, datetime]] = {}
    for hour, members in hours.items():
        local_start = hour.astimezone(calendar.zone).time()
        reactive = capacitive if rules.is_capacitive_hour(local_start) else inductive
        for s in members:
            slot_status[s] = _status_of([active.get(s), reactive.get(s)])
        if len(members) * minutes != 60 or any(slot_status[s] == "missing" for s in members):
            continue
        evaluated += 1
        p = sum((active[s].value or Decimal(0) for s in members), Decimal(0))
        q = sum((reactive[s].value or Decimal(0) for s in members), Decimal(0))
        if p <= 0:
            without_load += 1
            continue
        apparent = (p * p + q * q).sqrt()
        if p / apparent >= fr:
            continue
        below += 1
        ere += fr * apparent - p  # EEAM_T x (fR/fT - 1)
        corrected = fr * apparent  # PAM_T x fR/fT over a 1-hour interval
        # DRE is per calendar post for every hourly modality (REN 1000 Art. 304: "por posto
        # tarifário"), verde included: only the billed demand it is set against is single.
        post = slot_post[members[0]]
        if post not in worst or corrected > worst[post][0]:
            worst[post] = (corrected, hour)

    excess_energy = ExcessReactiveEnergy(
        kwh=ere,
        hours_expected=len(hours),
        hours_evaluated=evaluated,
        hours_below_reference=below,
        hours_without_load=without_load,
        coverage=_coverage(slot_status[s] for s in slots),
    )
    excess_demand = []
    for post in calendar.posts:
        peak, at = worst.get(post, (None, None))
        paf = billed.get(post if rules.demand_per_post else ALL_POSTS)
        kw: Decimal | None
        if paf is None:
            kw = None
        elif peak is None:
            kw = Decimal(0)
        else:
            kw = max(peak - paf, Decimal(0))
        excess_demand.append(
            ExcessReactiveDemand(
                post,
                peak,
                at,
                paf,
                kw,
                _coverage(slot_status[s] for s in slots if slot_post[s] == post),
            )
        )

    totals = []
    for kind, channel in (("inductive", inductive), ("capacitive", capacitive)):
        found = [channel.get(s) for s in slots]
        values = [i.value for i in found if i is not None and i.value is not None]
        totals.append(
            ReactiveEnergyTotal(
                kind, sum(values, Decimal(0)) if values else None, _coverage(_status_of([i]) for i in found)
            )
        )

    return BillingDeterminants(
        cycle=cycle,
        tariff=tariff,
        interval_minutes=minutes,
        energy=tuple(energy),
        demand=demand,
        excess_reactive_energy=excess_energy,
        excess_reactive_demand=tuple(excess_demand),
        reactive_energy=tuple(totals),
    )
