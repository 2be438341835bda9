"""Alarm rules: device events, instantaneous values, interval data, silence and VEE failures in;
observations (`lifecycle.Observation`) out. Pure functions; each observation carries the facts a
person needs to check it (the interval, the phase and its value, the event, the threshold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from hemera.domain.alarms.catalog import AlarmType
from hemera.domain.alarms.lifecycle import AlarmKey, Observation
from hemera.domain.alarms.thresholds import AlarmSettings
from hemera.domain.billing.tariff import ALL_POSTS, MeterTariff
from hemera.domain.billing.tou import post_of
from hemera.domain.instantaneous import InstantaneousReading, Quantity
from hemera.domain.meter_events import EventType, MeterEvent, Subject
from hemera.domain.readings import Channel, IntervalReading

# --- device events ------------------------------------------------------------------------------
# Event type → (alarm type, True when the event raises the condition / False when it ends it).
EVENT_RULES: Mapping[EventType, tuple[AlarmType, bool]] = {
    EventType.POWER_DOWN: (AlarmType.OUTAGE, True),
    EventType.POWER_UP: (AlarmType.OUTAGE, False),
    EventType.COVER_OPEN: (AlarmType.COVER_OPEN, True),
    EventType.COVER_CLOSED: (AlarmType.COVER_OPEN, False),
    EventType.MAGNETIC_TAMPER: (AlarmType.MAGNETIC_TAMPER, True),
    EventType.MAGNETIC_TAMPER_CLEARED: (AlarmType.MAGNETIC_TAMPER, False),
    EventType.PHASE_LOSS: (AlarmType.PHASE_LOSS, True),
    EventType.PHASE_RESTORED: (AlarmType.PHASE_LOSS, False),
    EventType.REVERSE_ENERGY: (AlarmType.REVERSE_ENERGY, True),
    EventType.REVERSE_ENERGY_CLEARED: (AlarmType.REVERSE_ENERGY, False),
    EventType.CLOCK_RESET: (AlarmType.CLOCK_RESET, True),
    EventType.RELAY_OPEN: (AlarmType.RELAY_OPEN, True),
    EventType.RELAY_CLOSED: (AlarmType.RELAY_OPEN, False),
    EventType.METER_READ_FAILED: (AlarmType.METER_READ_FAILED, True),
    EventType.RTU_BUFFER_OVERFLOW: (AlarmType.RTU_BUFFER_OVERFLOW, True),
    EventType.RTU_LOW_SIGNAL: (AlarmType.RTU_LOW_SIGNAL, True),
    EventType.RTU_HIGH_TEMPERATURE: (AlarmType.RTU_HIGH_TEMPERATURE, True),
}


def event_observations(events: Iterable[MeterEvent], settings: AlarmSettings) -> list[Observation]:
    """One observation per device event that raises or ends an alarm condition, in time order.
    Clock adjustments (small, planned corrections) raise nothing."""
    found = []
    for event in sorted(events, key=lambda e: (e.at, e.type.value)):
        rule = EVENT_RULES.get(event.type)
        if rule is None or not settings.enabled(rule[0]):
            continue
        alarm_type, raises = rule
        facts: dict[str, object] = {
            "event": event.type.value,
            "event_at": event.at.isoformat(),
            "device_id": event.device_id,
        }
        if event.code is not None:
            facts["code"] = event.code
        if event.detail:
            facts["detail"] = dict(event.detail)
        key = AlarmKey(event.subject, event.subject_id, alarm_type, _scope_of(event))
        duration = _reported_duration(event)
        if event.type is EventType.POWER_UP and duration is not None:
            # The IDIS power-failure log reports the outage's duration with the power up: an
            # outage whose last gasp never arrived still opens (at power up - duration) and closes.
            start = event.at - duration
            implied = {
                **facts,
                "event": "power_down",
                "event_at": start.isoformat(),
                "implied_by": "power_up",
            }
            found.append(Observation(key, start, True, implied, implied=True))
        found.append(Observation(key, event.at, raises, facts))
    return sorted(found, key=lambda o: o.at)


def _scope_of(event: MeterEvent) -> str:
    """A phase loss is an alarm per phase: L2 restored does not close L1's loss."""
    phase = event.detail.get("phase")
    if event.type in (EventType.PHASE_LOSS, EventType.PHASE_RESTORED) and phase in (1, 2, 3):
        return f"phase-{phase}"
    return ""


def _reported_duration(event: MeterEvent) -> timedelta | None:
    seconds = event.detail.get("duration_s")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        return None
    return timedelta(seconds=seconds)


# --- instantaneous values -----------------------------------------------------------------------
_PHASES = (
    ("L1", Quantity.VOLTAGE_L1, Quantity.CURRENT_L1),
    ("L2", Quantity.VOLTAGE_L2, Quantity.CURRENT_L2),
    ("L3", Quantity.VOLTAGE_L3, Quantity.CURRENT_L3),
)


def _pu(value: Decimal, nominal: Decimal) -> Decimal:
    return (value / nominal).quantize(Decimal("0.001"))


def voltage_unbalance_pct(voltages: Sequence[Decimal]) -> Decimal:
    """Voltage unbalance (%) from phase voltage magnitudes: the largest deviation from the mean
    over the mean (NEMA MG-1 / IEEE 1159 "LVUR" definition). PRODIST Módulo 8 defines FD% as the
    ratio of negative- to positive-sequence voltage, which needs phase angles the meters' maps do
    not read; for small unbalances the two agree closely."""
    mean = sum(voltages, Decimal(0)) / len(voltages)
    if mean == 0:
        return Decimal(0)
    return (max(abs(v - mean) for v in voltages) / mean * 100).quantize(Decimal("0.01"))


def instantaneous_observations(reading: InstantaneousReading, settings: AlarmSettings) -> list[Observation]:
    """Voltage band (per phase, PRODIST Módulo 8), unbalance, current without metered energy and
    energy with a phase at zero voltage, for one meter's reading. A rule whose inputs the meter
    does not measure (or, for the voltage rules, a tenant without a nominal voltage) observes
    nothing, so it neither raises nor clears."""
    t = settings.thresholds
    at = reading.captured_at
    meter = reading.meter_id
    values = reading.values
    found: list[Observation] = []

    def observe(alarm_type: AlarmType, active: bool, facts: dict[str, object]) -> None:
        if settings.enabled(alarm_type):
            facts = {"captured_at": at.isoformat(), **facts}
            found.append(Observation(AlarmKey(Subject.METER, meter, alarm_type), at, active, facts))

    phases = [(name, values[v], values.get(i)) for name, v, i in _PHASES if v in values]
    nominal = settings.nominal_voltage_v
    if phases and nominal:
        low = [(n, v) for n, v, _ in phases if _pu(v, nominal) < t.voltage_min_pu]
        high = [(n, v) for n, v, _ in phases if _pu(v, nominal) > t.voltage_max_pu]
        band = {"nominal_v": str(nominal), "min_pu": str(t.voltage_min_pu), "max_pu": str(t.voltage_max_pu)}
        for alarm_type, outside in ((AlarmType.UNDERVOLTAGE, low), (AlarmType.OVERVOLTAGE, high)):
            observe(
                alarm_type,
                bool(outside),
                {
                    **band,
                    "phases": {n: {"voltage_v": str(v), "pu": str(_pu(v, nominal))} for n, v in outside},
                },
            )
        # A phase that reads (almost) no voltage while it carries current (or, when the meter
        # does not read that phase's current, while energy is metered): its voltage link is open
        # or bypassed, so that phase's energy goes unregistered. A supply phase loss (no voltage
        # and no current on the phase) is not this: the meter's phase-loss event reports it.
        dead = [
            (n, v, i)
            for n, v, i in phases
            if _pu(v, nominal) < t.zero_voltage_pu and (i is None or i >= t.current_present_a)
        ]
        power = values.get(Quantity.ACTIVE_POWER)
        if power is not None:
            observe(
                AlarmType.ENERGY_WITHOUT_VOLTAGE,
                bool(dead) and power > t.no_energy_w,
                {
                    "active_power_w": str(power),
                    "zero_voltage_pu": str(t.zero_voltage_pu),
                    "phases": {
                        n: {"voltage_v": str(v), **({"current_a": str(i)} if i is not None else {})}
                        for n, v, i in dead
                    },
                },
            )
    if len(phases) == 3:
        unbalance = voltage_unbalance_pct([v for _, v, _ in phases])
        observe(
            AlarmType.VOLTAGE_UNBALANCE,
            unbalance > t.voltage_unbalance_max_pct,
            {
                "unbalance_pct": str(unbalance),
                "max_pct": str(t.voltage_unbalance_max_pct),
                "voltages_v": {n: str(v) for n, v, _ in phases},
            },
        )
    power = values.get(Quantity.ACTIVE_POWER)
    currents = {n: i for n, _, i in phases if i is not None}
    if power is not None and currents:
        carrying = {n: i for n, i in currents.items() if i >= t.current_present_a}
        observe(
            AlarmType.CURRENT_WITHOUT_ENERGY,
            bool(carrying) and abs(power) <= t.no_energy_w,
            {
                "active_power_w": str(power),
                "currents_a": {n: str(i) for n, i in carrying.items()},
                "current_present_a": str(t.current_present_a),
                "no_energy_w": str(t.no_energy_w),
            },
        )
    return found


# --- interval data ------------------------------------------------------------------------------
def _interval_facts(reading: IntervalReading) -> dict[str, object]:
    end = reading.start + timedelta(minutes=reading.length_minutes)
    return {"interval_start": reading.start.isoformat(), "interval_end": end.isoformat()}


def power_factor(active_kwh: Decimal, reactive_kvarh: Decimal) -> Decimal | None:
    """Power factor of one interval from its energies, P / √(P² + Q²) (how ANEEL REN 1000/2021
    computes the billed power factor from the hourly kWh and kvarh); None without active energy."""
    if active_kwh <= 0:
        return None
    apparent = (active_kwh * active_kwh + reactive_kvarh * reactive_kvarh).sqrt()
    return (active_kwh / apparent).quantize(Decimal("0.0001"))


def power_factor_observations(
    meter_id: str,
    active: Sequence[IntervalReading],
    reactive: Sequence[IntervalReading],
    settings: AlarmSettings,
    tariff: MeterTariff | None = None,
    capacitive: Sequence[IntervalReading] = (),
) -> list[Observation]:
    """Low power factor on one meter's changed days against the tenant's reference (REN
    1000/2021: 0.92). One observation for the whole stretch: active (dated by the worst period,
    named in the facts) when any period is below the reference, else inactive (dated by the last).

    With the meter's tariff the periods are what the bill charges (REN 1000 Art. 304): complete
    clock hours in the tenant's time zone, capacitive reactive energy (R-, `capacitive`) inside
    the tariff's capacitive window and inductive (R+, `reactive`) in every other hour. Without a
    tariff each interval is judged on its inductive energy."""
    if not settings.enabled(AlarmType.LOW_POWER_FACTOR):
        return []
    minimum = settings.thresholds.power_factor_min
    periods = (
        _hourly_pf_periods(active, reactive, capacitive, tariff)
        if tariff is not None
        else _interval_pf_periods(active, reactive)
    )
    evaluated = [
        (period, pf) for period in periods if (pf := power_factor(period.kwh, period.kvarh)) is not None
    ]
    if not evaluated:
        return []
    key = AlarmKey(Subject.METER, meter_id, AlarmType.LOW_POWER_FACTOR)
    below = [(period, pf) for period, pf in evaluated if pf < minimum]
    if not below:
        last = evaluated[-1][0]
        return [Observation(key, last.start, False, {**last.facts(), "reference": str(minimum)})]
    worst, pf = min(below, key=lambda pair: (pair[1], pair[0].start))
    facts = {
        **worst.facts(),
        "power_factor": str(pf),
        "reference": str(minimum),
        "active_kwh": str(worst.kwh),
        "reactive_kvarh": str(worst.kvarh),
        "intervals_below": sum(p.intervals for p, _ in below),
    }
    if worst.kind is not None:
        facts["reactive"] = worst.kind
    return [Observation(key, max(p.start for p, _ in below), True, facts)]


@dataclass(frozen=True, slots=True)
class _PfPeriod:
    """An interval or clock hour judged for its power factor."""

    start: datetime
    minutes: int
    kwh: Decimal
    kvarh: Decimal
    intervals: int
    kind: str | None = None  # "inductive" / "capacitive" for a tariff's hour

    def facts(self) -> dict[str, object]:
        end = self.start + timedelta(minutes=self.minutes)
        return {"interval_start": self.start.isoformat(), "interval_end": end.isoformat()}


def _interval_pf_periods(
    active: Sequence[IntervalReading], reactive: Sequence[IntervalReading]
) -> list[_PfPeriod]:
    reactive_at = {r.start: r.value for r in reactive}
    return [
        _PfPeriod(r.start, r.length_minutes, r.value, reactive_at[r.start], 1)
        for r in sorted(active, key=lambda r: r.start)
        if r.start in reactive_at
    ]


def _hourly_pf_periods(
    active: Sequence[IntervalReading],
    inductive: Sequence[IntervalReading],
    capacitive: Sequence[IntervalReading],
    tariff: MeterTariff,
) -> list[_PfPeriod]:
    """Complete clock hours (local) with every interval present in A+ and the hour's reactive
    channel; an hour with a gap is not judged (as billing does)."""
    zone = tariff.calendar.zone
    by_channel = {
        "inductive": {r.start: r for r in inductive},
        "capacitive": {r.start: r for r in capacitive},
    }
    hours: dict[datetime, list[IntervalReading]] = {}
    for r in active:
        local = r.start.astimezone(zone)
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(r.start.tzinfo)
        hours.setdefault(hour, []).append(r)
    periods = []
    for hour, members in sorted(hours.items()):
        kind = "capacitive" if tariff.rules.is_capacitive_hour(hour.astimezone(zone).time()) else "inductive"
        q_of = by_channel[kind]
        if sum(r.length_minutes for r in members) != 60 or any(r.start not in q_of for r in members):
            continue
        p = sum((r.value for r in members), Decimal(0))
        q = sum((q_of[r.start].value for r in members), Decimal(0))
        periods.append(_PfPeriod(hour, 60, p, q, len(members), kind))
    return periods


@dataclass(frozen=True, slots=True)
class _DemandBlock:
    """One integration block of the billed demand: its readings, post and contract."""

    readings: tuple[IntervalReading, ...]
    minutes: int
    post: str
    contracted: Decimal

    @property
    def kw(self) -> Decimal:
        return sum((r.value for r in self.readings), Decimal(0)) * 60 / self.minutes

    @property
    def start(self) -> datetime:
        return self.readings[0].start


def _demand_blocks(
    active: Sequence[IntervalReading], contract: Mapping[str, Decimal], tariff: MeterTariff | None
) -> list[_DemandBlock]:
    """The meter's complete integration blocks with a contract: the tariff's (15 min; shorter
    intervals summed, an incomplete block skipped as billing does), each in the post of its start
    when the tariff bills a demand per post (azul), else in `ALL_POSTS`."""
    block_minutes = tariff.rules.demand_interval_minutes if tariff is not None else 15
    groups: dict[datetime, list[IntervalReading]] = {}
    for r in sorted(active, key=lambda r: r.start):
        minutes = max(block_minutes, r.length_minutes)
        epoch_minutes = int(r.start.timestamp()) // 60
        groups.setdefault(r.start - timedelta(minutes=epoch_minutes % minutes), []).append(r)
    blocks = []
    for members in groups.values():
        minutes = max(block_minutes, members[0].length_minutes)
        if sum(r.length_minutes for r in members) != minutes:
            continue
        per_post = tariff is not None and tariff.rules.demand_per_post
        post = post_of(members[0].start, tariff.calendar) if tariff is not None and per_post else ALL_POSTS
        contracted = contract.get(post)
        if contracted is not None:
            blocks.append(_DemandBlock(tuple(members), minutes, post, contracted))
    return blocks


def demand_observations(
    meter_id: str,
    active: Sequence[IntervalReading],
    settings: AlarmSettings,
    tariff: MeterTariff | None = None,
) -> list[Observation]:
    """Demand above the contracted demand by more than the tolerance (REN 1000/2021: 5 %) on the
    intervals of one meter's changed days, integrated as billing does (15-minute blocks, Art. 2
    XIII). With the meter's tariff each block is held to the contract of its post (azul: ponta and
    fora ponta have their own), else to the meter's single contracted demand; meters without a
    contracted demand observe nothing."""
    if not active or not settings.enabled(AlarmType.DEMAND_OVERRUN):
        return []
    if tariff is not None and tariff.contracted_demand_kw:
        contract: Mapping[str, Decimal] = dict(tariff.contracted_demand_kw)
    elif (single := settings.contracted_demand_kw.get(meter_id)) is not None:
        contract, tariff = {ALL_POSTS: single}, None
    else:
        return []
    tolerance = settings.thresholds.demand_tolerance
    key = AlarmKey(Subject.METER, meter_id, AlarmType.DEMAND_OVERRUN)
    blocks = _demand_blocks(active, contract, tariff)
    if not blocks:
        return []
    over = [b for b in blocks if b.kw > b.contracted * (1 + tolerance)]
    if not over:
        last = max(blocks, key=lambda b: b.start)
        facts = {**_block_facts(last), "limit_kw": str(last.contracted * (1 + tolerance))}
        return [Observation(key, last.start, False, facts)]
    worst = max(over, key=lambda b: (b.kw / b.contracted, b.start))
    facts = {
        **_block_facts(worst),
        "demand_kw": str(worst.kw.quantize(Decimal("0.001"))),
        "contracted_kw": str(worst.contracted),
        "tolerance": str(tolerance),
        "limit_kw": str(worst.contracted * (1 + tolerance)),
        "overrun_pct": str(((worst.kw / worst.contracted - 1) * 100).quantize(Decimal("0.1"))),
        "intervals_over": sum(len(b.readings) for b in over),
    }
    return [Observation(key, max(b.start for b in over), True, facts)]


def _block_facts(block: _DemandBlock) -> dict[str, object]:
    end = block.start + timedelta(minutes=block.minutes)
    facts: dict[str, object] = {"interval_start": block.start.isoformat(), "interval_end": end.isoformat()}
    if block.post != ALL_POSTS:
        facts["post"] = block.post
    return facts


# --- silence, reads exhausted, VEE failures -----------------------------------------------------
def silence_observations(
    last_seen: Mapping[tuple[Subject, str], datetime],
    now: datetime,
    settings: AlarmSettings,
    rtu_of: Mapping[str, str] | None = None,
) -> list[Observation]:
    """Communication failure: a meter or RTU that delivered before but nothing for
    `silence_hours`. Devices that never delivered are not judged (not commissioned yet). A meter
    whose RTU (`rtu_of`) is silent too is not judged on its own: the RTU's alarm is the one root
    cause, and lists the silent meters behind it."""
    if not settings.enabled(AlarmType.COMMUNICATION_FAILURE):
        return []
    rtu_of = rtu_of or {}
    limit = timedelta(hours=float(settings.thresholds.silence_hours))
    silent = {key for key, seen in last_seen.items() if now - seen >= limit}
    found = []
    for (subject, subject_id), seen in sorted(last_seen.items()):
        rtu = rtu_of.get(subject_id) if subject is Subject.METER else None
        if rtu is not None and (Subject.RTU, rtu) in silent:
            continue
        facts: dict[str, object] = {
            "last_seen": seen.isoformat(),
            "silent_hours": round((now - seen).total_seconds() / 3600, 3),
            "limit_hours": str(settings.thresholds.silence_hours),
        }
        if subject is Subject.RTU:
            behind = sorted(m for m, r in rtu_of.items() if r == subject_id and (Subject.METER, m) in silent)
            if behind:
                facts["silent_meters"] = behind
        key = AlarmKey(subject, subject_id, AlarmType.COMMUNICATION_FAILURE)
        found.append(Observation(key, now, (subject, subject_id) in silent, facts))
    return found


@dataclass(frozen=True, slots=True)
class ReadsExhausted:
    """A `MeterReadsExhausted` event: the re-read sweep gave up on a gap of one meter."""

    meter_id: str
    device_id: str
    channel: str
    gap_start: datetime
    gap_end: datetime
    attempts: int


def reads_exhausted_observation(
    event: ReadsExhausted, at: datetime, settings: AlarmSettings
) -> list[Observation]:
    if not settings.enabled(AlarmType.READS_EXHAUSTED):
        return []
    facts = {
        "channel": event.channel,
        "gap_start": event.gap_start.isoformat(),
        "gap_end": event.gap_end.isoformat(),
        "attempts": event.attempts,
        "device_id": event.device_id,
    }
    return [Observation(AlarmKey(Subject.METER, event.meter_id, AlarmType.READS_EXHAUSTED), at, True, facts)]


def vee_failure_observation(
    meter_id: str,
    failed_days: Mapping[date, Sequence[str]],
    latest_day: date,
    at: datetime,
    settings: AlarmSettings,
) -> list[Observation]:
    """Repeated VEE failures: VEE rules failed on at least `vee_failure_days` of the
    `vee_window_days` days up to `latest_day` (the failed rules per day are the facts)."""
    if not settings.enabled(AlarmType.VEE_FAILURES):
        return []
    t = settings.thresholds
    first = latest_day - timedelta(days=t.vee_window_days - 1)
    recent = {d: tuple(r) for d, r in sorted(failed_days.items()) if first <= d <= latest_day and r}
    facts = {
        "failed_days": {d.isoformat(): list(r) for d, r in recent.items()},
        "window_days": t.vee_window_days,
        "limit_days": t.vee_failure_days,
    }
    key = AlarmKey(Subject.METER, meter_id, AlarmType.VEE_FAILURES)
    return [Observation(key, at, len(recent) >= t.vee_failure_days, facts)]


def interval_channels() -> tuple[Channel, Channel]:
    """The channels the interval rules read: active import (demand, PF) and reactive import (PF)."""
    return Channel.ACTIVE_IMPORT, Channel.REACTIVE_IMPORT
