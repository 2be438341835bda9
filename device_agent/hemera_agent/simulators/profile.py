"""A deterministic load model of commercial & industrial (C&I) customers.

The meter simulators serve these values and the cloud's tests compare what they stored against
the same function, so `interval_energy` is a pure function of its arguments: no global random
state, no wall clock. Noise comes from a SHA-256 of (meter seed, interval start).

Shape, as a fraction of the meter's peak demand, evaluated in the customer's LOCAL time at the
middle of the interval (so daylight-saving changes move the working day with the clock on the
wall, as they do in a real plant):

- industry: two shifts 06-22 on weekdays at ~92 % with a short dip at the 14:00 shift change,
  Saturday one reduced shift 06-14 at ~60 %, base load (~25 %: compressors, cooling, lighting)
  at night and on Sunday;
- commerce: opening hours 10-22 every day at ~85 % with an evening peak, ~20 % base;
- office: 08-18 on weekdays at ~80 % with an early-afternoon HVAC peak, ~15 % base.

Public holidays of the tenant's country (the `holidays` package, national holidays only) run like
Sundays: an industrial plant at base load, an office closed, a shopping centre open as on Sunday.
They apply when the caller passes `country` (the simulators always do, from the tenant file).

Transitions are smooth one-hour ramps (smoothstep), not steps. Demand carries ±4 % noise.
Power factor moves with load between 0.86 (light load: unloaded motors and transformers) and 0.97
(full load), ±0.01 noise; reactive energy = active energy * tan(acos(pf)). At industrial base
load the capacitor banks sized for production stay connected and over-compensate, so that
reactive energy is capacitive (reactive export, R-) — the case the Brazilian Group A tariff bills
as capacitive excess at night (REFERENCE.md). No on-site generation is modelled: active export is 0.
Energies are whole Wh/varh, rounded half-to-even.

`instantaneous` gives what the meter's instantaneous registers show at a moment: per-phase
voltage with noise around the country's nominal phase-to-neutral voltage, per-phase current, P,
Q, PF and frequency, derived from the same demand and power factor as the interval holding that
moment, so the instantaneous power and the load profile tell the same story.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from hemera.tenants import LoadClass

SUPPORTED_INTERVAL_MINUTES = (5, 15, 30, 60)

_NOISE_DEMAND = 0.04  # ± fraction of demand
_NOISE_PF = 0.01  # ± power factor
_PF_MIN, _PF_MAX = 0.86, 0.97
_CAPACITIVE_BELOW = 0.35  # industry load fraction under which capacitor banks over-compensate
# ± fraction of nominal voltage (EN 50160 allows ±10 %; a healthy C&I feeder is far tighter)
_NOISE_VOLTAGE = 0.015
_NOISE_FREQUENCY_HZ = 0.03
_NOISE_INSTANT_DEMAND = 0.02  # ± fraction: instantaneous power wanders around the interval mean
_PHASE_SHARE = (0.34, 0.33, 0.33)  # a C&I load is close to balanced; L1 carries the single-phase loads

# Phase-to-neutral nominal voltage (V) and frequency (Hz) of low-voltage C&I supply by country.
# Brazil's south (380/220 V) differs from the 220/127 V of the north-east; the south is the demo's.
NOMINAL_SUPPLY: dict[str, tuple[float, float]] = {
    "BR": (220.0, 60.0),
    "AU": (230.0, 50.0),
    "NZ": (230.0, 50.0),
    "US": (277.0, 60.0),
    "CA": (347.0, 60.0),
    "MX": (127.0, 60.0),
}
DEFAULT_SUPPLY = (230.0, 50.0)  # IEC 60038


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one meter in one interval, as the load-profile record holds it."""

    active_import_wh: int
    active_export_wh: int
    reactive_import_varh: int
    reactive_export_varh: int


def meter_seed(tenant_id: str, meter_id: str) -> str:
    """The noise seed the simulators use for a meter: tenant-qualified, so equal meter ids in two
    tenants do not produce identical curves."""
    return f"{tenant_id}/{meter_id}"


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def _open(hour: float, opens: float, closes: float, ramp: float = 1.0) -> float:
    """1 between `opens` and `closes`, 0 outside, with smooth ramps of `ramp` hours centred on them."""
    up = _smoothstep((hour - (opens - ramp / 2)) / ramp)
    down = 1.0 - _smoothstep((hour - (closes - ramp / 2)) / ramp)
    return up * down


def _bell(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


@cache
def _holiday_calendar(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_public_holiday(country: str | None, day: date) -> bool:
    """True when `day` is a national public holiday of `country` (ISO 3166 alpha-2)."""
    return country is not None and day in _holiday_calendar(country, day.year)


def load_fraction(load_class: LoadClass, local: datetime, *, holiday: bool = False) -> float:
    """Demand as a fraction (0-1) of peak at local wall-clock time `local`, before noise.

    A public `holiday` runs like a Sunday.
    """
    hour = local.hour + local.minute / 60 + local.second / 3600
    weekday = 6 if holiday else local.weekday()  # Monday = 0
    if load_class == "industry":
        base = 0.25
        if weekday < 5:
            level = base + (0.92 - base) * _open(hour, 6, 22) - 0.10 * _bell(hour, 14.0, 0.4)
        elif weekday == 5:
            level = base + (0.60 - base) * _open(hour, 6, 14)
        else:
            level = base
    elif load_class == "commerce":
        base = 0.20
        opened = _open(hour, 10, 22)
        level = base + (0.85 - base) * opened + 0.10 * opened * _bell(hour, 19.0, 2.0)
    elif load_class == "office":
        base = 0.15
        if weekday < 5:
            opened = _open(hour, 8, 18)
            level = base + (0.80 - base) * opened + 0.12 * opened * _bell(hour, 14.5, 2.0)
        else:
            level = base
    else:  # pragma: no cover - LoadClass is a closed Literal
        raise ValueError(f"unknown load class {load_class!r}")
    return min(1.0, max(0.0, level))


def _unit_noise(seed: str, start_utc: datetime, minutes: int) -> tuple[float, float]:
    """Two numbers uniform in [0, 1) fixed by (seed, interval): same inputs, same noise, always."""
    epoch = int(start_utc.timestamp())
    digest = hashlib.sha256(f"{seed}|{epoch}|{minutes}".encode()).digest()
    scale = float(1 << 64)
    return int.from_bytes(digest[:8], "big") / scale, int.from_bytes(digest[8:16], "big") / scale


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def power_factor(load_level: float, noise: float = 0.5) -> float:
    """Displacement power factor at a load fraction: 0.86 at light load up to 0.97 at full load."""
    span = (load_level - 0.15) / (0.95 - 0.15)
    pf = _PF_MIN + (_PF_MAX - _PF_MIN) * min(1.0, max(0.0, span)) + _NOISE_PF * (2 * noise - 1)
    return min(_PF_MAX, max(_PF_MIN, pf))


@dataclass(frozen=True, slots=True)
class _Demand:
    level: float  # load fraction before noise
    kw: float  # mean active demand of the interval
    pf: float  # displacement power factor
    capacitive: bool  # reactive power flows to the grid (R-)


def _interval_demand(
    meter_seed: str,
    load_class: LoadClass,
    peak_kw: float,
    timezone: str,
    start_utc: datetime,
    minutes: int,
    country: str | None,
) -> _Demand:
    if start_utc.tzinfo is None:
        raise ValueError("interval start must be tz-aware")
    if minutes not in SUPPORTED_INTERVAL_MINUTES:
        raise ValueError(f"unsupported interval length {minutes} min")
    if peak_kw <= 0:
        raise ValueError("peak_kw must be positive")
    middle = (start_utc + timedelta(minutes=minutes) / 2).astimezone(_zone(timezone))
    level = load_fraction(load_class, middle, holiday=is_public_holiday(country, middle.date()))
    demand_noise, pf_noise = _unit_noise(meter_seed, start_utc, minutes)
    demand_kw = peak_kw * min(1.0, level * (1.0 + _NOISE_DEMAND * (2 * demand_noise - 1)))
    capacitive = load_class == "industry" and level < _CAPACITIVE_BELOW
    return _Demand(level, demand_kw, power_factor(level, pf_noise), capacitive)


def interval_energy(
    meter_seed: str,
    load_class: LoadClass,
    peak_kw: float,
    timezone: str,
    start_utc: datetime,
    minutes: int = 15,
    *,
    country: str | None = None,
) -> IntervalEnergy:
    """Energy of the interval starting at `start_utc` (tz-aware) lasting `minutes`.

    `country` (ISO 3166 alpha-2, the tenant's) makes its national public holidays run like Sundays.
    """
    demand = _interval_demand(meter_seed, load_class, peak_kw, timezone, start_utc, minutes, country)
    active_wh = demand.kw * 1000.0 * minutes / 60.0
    reactive_varh = active_wh * math.tan(math.acos(demand.pf))
    capacitive = demand.capacitive
    return IntervalEnergy(
        active_import_wh=round(active_wh),
        active_export_wh=0,
        reactive_import_varh=0 if capacitive else round(reactive_varh),
        reactive_export_varh=round(reactive_varh) if capacitive else 0,
    )


@dataclass(frozen=True, slots=True)
class Instantaneous:
    """What a three-phase meter's instantaneous registers show at one moment.

    Power is signed as the meter sees it: positive active power is import (A+), positive reactive
    power is inductive (Q1); `power_factor` carries the sign of the active power (IEC convention).
    """

    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    active_power_w: float
    reactive_power_var: float
    power_factor: float
    frequency_hz: float


def nominal_supply(country: str | None) -> tuple[float, float]:
    """(phase-to-neutral voltage V, frequency Hz) of low-voltage supply in `country`."""
    return NOMINAL_SUPPLY.get(country or "", DEFAULT_SUPPLY)


def _moment_noise(seed: str, at_utc: datetime) -> tuple[float, ...]:
    digest = hashlib.sha256(f"{seed}|inst|{int(at_utc.timestamp())}".encode()).digest()
    scale = float(1 << 32)
    return tuple(int.from_bytes(digest[i : i + 4], "big") / scale for i in range(0, 24, 4))


def instantaneous(
    meter_seed: str,
    load_class: LoadClass,
    peak_kw: float,
    timezone: str,
    at_utc: datetime,
    minutes: int = 15,
    *,
    country: str | None = None,
    nominal_v: float | None = None,
) -> Instantaneous:
    """Instantaneous values at `at_utc` (tz-aware), consistent with the interval holding it.

    Demand and power factor are those of the `minutes`-long interval containing `at_utc` (the
    load profile's), with ±2 % of moment-to-moment wander; voltages are the nominal (the tenant
    country's unless `nominal_v` is given) ±1.5 % per phase; frequency nominal ±0.03 Hz. Pure:
    the same second gives the same values.
    """
    if at_utc.tzinfo is None:
        raise ValueError("instant must be tz-aware")
    seconds = minutes * 60
    start = datetime.fromtimestamp(int(at_utc.timestamp()) // seconds * seconds, UTC)
    demand = _interval_demand(meter_seed, load_class, peak_kw, timezone, start, minutes, country)
    nominal, hertz = nominal_supply(country)
    nominal = nominal_v if nominal_v is not None else nominal
    noise = _moment_noise(meter_seed, at_utc)
    voltages = tuple(round(nominal * (1 + _NOISE_VOLTAGE * (2 * n - 1)), 1) for n in noise[:3])
    active_w = demand.kw * 1000.0 * (1 + _NOISE_INSTANT_DEMAND * (2 * noise[3] - 1))
    reactive_var = active_w * math.tan(math.acos(demand.pf)) * (-1 if demand.capacitive else 1)
    apparent_va = math.hypot(active_w, reactive_var)
    currents = tuple(
        round(apparent_va * share / v, 3) for share, v in zip(_PHASE_SHARE, voltages, strict=True)
    )
    return Instantaneous(
        voltage_v=(voltages[0], voltages[1], voltages[2]),
        current_a=(currents[0], currents[1], currents[2]),
        active_power_w=round(active_w),
        reactive_power_var=round(reactive_var),
        power_factor=round(active_w / apparent_va, 3) if apparent_va else 1.0,
        frequency_hz=round(hertz + _NOISE_FREQUENCY_HZ * (2 * noise[4] - 1), 2),
    )
