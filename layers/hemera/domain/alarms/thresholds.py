"""Alarm thresholds with the platform's documented defaults, and a tenant's alarm settings.

Defaults follow the Brazilian rules the first tenants are billed under; a tenant changes any of
them in its tenant file (`alarms:` → `hemera.tenants.AlarmOverrides`):

- Steady-state voltage: ANEEL PRODIST Módulo 8 (power quality), the *adequate* band of the
  reading voltage against the contracted/nominal voltage, 0.93 ≤ V/Vn ≤ 1.05 pu (the band the
  module gives for supply between 1 kV and 69 kV; outside it a reading is *precarious* or
  *critical*).
- Voltage unbalance: PRODIST Módulo 8 limits the unbalance factor FD95% to 3 % at nominal
  voltages up to 2.3 kV.
- Power factor: ANEEL REN 1000/2021 (which carried over REN 414/2010) takes 0.92 as the reference
  power factor; below it the surplus reactive energy is billed.
- Demand: REN 1000/2021 charges demand overrun (*ultrapassagem*) when the measured demand exceeds
  the contracted demand by more than 5 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hemera.domain.alarms.catalog import AlarmType


@dataclass(frozen=True, slots=True)
class AlarmThresholds:
    # PRODIST Módulo 8: adequate steady-state voltage band, per unit of the nominal voltage.
    voltage_min_pu: Decimal = Decimal("0.93")
    voltage_max_pu: Decimal = Decimal("1.05")
    # PRODIST Módulo 8: unbalance factor limit (%) for nominal voltages up to 2.3 kV.
    voltage_unbalance_max_pct: Decimal = Decimal("3.0")
    # REN 1000/2021: reference power factor.
    power_factor_min: Decimal = Decimal("0.92")
    # REN 1000/2021: demand overrun tolerance over the contracted demand (fraction).
    demand_tolerance: Decimal = Decimal("0.05")
    # A phase carries current from this many amperes (below: CT noise, no load).
    current_present_a: Decimal = Decimal("0.5")
    # Active power at or below this many watts counts as "no metered energy".
    no_energy_w: Decimal = Decimal("10")
    # A phase voltage below this share of the nominal voltage counts as "zero" (phase missing).
    zero_voltage_pu: Decimal = Decimal("0.1")
    # No data from a meter or RTU for this many hours raises a communication failure.
    silence_hours: Decimal = Decimal(6)
    # VEE rules failed on at least this many of the last `vee_window_days` days of a meter.
    vee_failure_days: int = 3
    vee_window_days: int = 7
    # One-shot alarms (clock reset, RTU buffer overflow, ...) close after this long without a
    # recurrence.
    quiet_close_hours: int = 24
    # Theft score: a drop of the recent daily consumption against the meter's history by at
    # least this fraction counts (and the score grows with the drop).
    consumption_drop: Decimal = Decimal("0.4")


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """What the alarm rules need to know about one tenant: its thresholds, the nominal voltage
    (phase to neutral, V) of its network, each meter's contracted demand (kW, primary side) and
    the alarm types it switched off."""

    tenant_id: str
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    nominal_voltage_v: Decimal | None = None
    contracted_demand_kw: Mapping[str, Decimal] = field(default_factory=dict)
    disabled: frozenset[AlarmType] = frozenset()

    def enabled(self, alarm_type: AlarmType) -> bool:
        return alarm_type not in self.disabled
