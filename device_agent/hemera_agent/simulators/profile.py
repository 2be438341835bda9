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

Transitions are smooth one-hour ramps (smoothstep), not steps. Demand carries ±4 % noise.
Power factor moves with load between 0.86 (light load: unloaded motors and transformers) and 0.97
(full load), ±0.01 noise; reactive energy = active energy * tan(acos(pf)). At industrial base
load the capacitor banks sized for production stay connected and over-compensate, so that
reactive energy is capacitive (reactive export, R-) — the case the Brazilian Group A tariff bills
as capacitive excess at night (REFERENCE.md). No on-site generation is modelled: active export is 0.
Energies are whole Wh/varh, rounded half-to-even.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hemera.tenants import LoadClass

SUPPORTED_INTERVAL_MINUTES = (5, 15, 30, 60)

_NOISE_DEMAND = 0.04  # ± fraction of demand
_NOISE_PF = 0.01  # ± power factor
_PF_MIN, _PF_MAX = 0.86, 0.97
_CAPACITIVE_BELOW = 0.35  # industry load fraction under which capacitor banks over-compensate


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


def load_fraction(load_class: LoadClass, local: datetime) -> float:
    """Demand as a fraction (0-1) of peak at local wall-clock time `local`, before noise."""
    hour = local.hour + local.minute / 60 + local.second / 3600
    weekday = local.weekday()  # Monday = 0
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


def interval_energy(
    meter_seed: str,
    load_class: LoadClass,
    peak_kw: float,
    timezone: str,
    start_utc: datetime,
    minutes: int = 15,
) -> IntervalEnergy:
    """Energy of the interval starting at `start_utc` (tz-aware) lasting `minutes`."""
    if start_utc.tzinfo is None:
        raise ValueError("interval start must be tz-aware")
    if minutes not in SUPPORTED_INTERVAL_MINUTES:
        raise ValueError(f"unsupported interval length {minutes} min")
    if peak_kw <= 0:
        raise ValueError("peak_kw must be positive")
    middle = (start_utc + timedelta(minutes=minutes) / 2).astimezone(_zone(timezone))
    level = load_fraction(load_class, middle)
    demand_noise, pf_noise = _unit_noise(meter_seed, start_utc, minutes)
    demand_kw = peak_kw * min(1.0, level * (1.0 + _NOISE_DEMAND * (2 * demand_noise - 1)))
    active_wh = demand_kw * 1000.0 * minutes / 60.0
    reactive_varh = active_wh * math.tan(math.acos(power_factor(level, pf_noise)))
    capacitive = load_class == "industry" and level < _CAPACITIVE_BELOW
    return IntervalEnergy(
        active_import_wh=round(active_wh),
        active_export_wh=0,
        reactive_import_varh=0 if capacitive else round(reactive_varh),
        reactive_export_varh=round(reactive_varh) if capacitive else 0,
    )
