"""Faults on demand: a scenario file says what goes wrong with which simulated meter, and when.

A scenario (`hemera.scenario/1`, YAML, validated here by pydantic) lists per meter time windows
of field faults; the Modbus simulator applies them through the pure functions below, so each
fault is testable without a socket (the DLMS simulator applies them to its instantaneous values -
`faulted_instantaneous` - and its event logs only; its load profile stays the healthy meter's):

```yaml
schema: hemera.scenario/1
start: 2026-03-02T00:00:00Z        # where the meters' memory starts (the simulated clock's start)
speed: 2000                        # simulated seconds per wall second until caught up with now
tenant_files: [../tenants/sul-energia.yaml]   # relative to this file
fleet: {tenants: 2, rtus_per_tenant: 2, meters_per_rtu: 3, models: [hx300, mx40]}  # generated
meters:
  - meter: sul-m-1001
    tenant: sul-energia            # optional when the meter id is unique in the fleet
    faults:
      - {kind: meter_off, start: 2026-03-02T10:00Z, end: 2026-03-02T12:00Z}
      - {kind: comm_loss, start: 2026-03-02T14:00Z, end: 2026-03-02T15:00Z, mode: silent}
      - {kind: spike, at: 2026-03-02T16:15Z, factor: 12}
      - {kind: clock_drift, start: 2026-03-02T00:00Z, seconds_per_day: 40}
      - {kind: clock_reset, at: 2026-03-02T18:00Z, to: 2000-01-01T00:00Z, synced_at: 2026-03-02T19:00Z}
      - {kind: outage, start: 2026-03-02T20:05Z, end: 2026-03-02T20:50Z}
      - {kind: phase_loss, phase: 2, start: 2026-03-02T21:00Z, end: 2026-03-02T22:00Z}
      - {kind: reverse_energy, start: 2026-03-02T22:00Z, end: 2026-03-02T23:00Z}
      - {kind: tamper, type: cover_open, at: 2026-03-02T23:10Z}
      - {kind: relay_open, start: 2026-03-02T23:30Z}       # no end: open until commanded closed
      - {kind: voltage_sag, phase: 1, pu: 0.85, start: 2026-03-03T08:00Z, end: 2026-03-03T08:30Z}
      - {kind: voltage_swell, phase: 3, pu: 1.10, start: 2026-03-03T09:00Z, end: 2026-03-03T09:30Z}
      - {kind: voltage_link_open, phase: 3, start: 2026-03-03T10:00Z, end: 2026-03-03T12:00Z}
      - {kind: bypass, start: 2026-03-03T13:00Z, end: 2026-03-03T15:00Z}
```

What each fault does to the meter (times are true UTC; windows are [start, end), no end = open):

- `meter_off`: the meter records nothing for intervals overlapping the window (a gap, never
  zeros) and does not answer; its first record afterwards carries the power-outage bit.
- `comm_loss`: the meter keeps recording but does not answer its unit id: `gateway_exception`
  answers Modbus exception 0x0B (what a TCP gateway says for a silent serial device), `silent`
  answers nothing for `silence_seconds` (the client times out) and then 0x0B.
- `spike`: the interval holding `at` is recorded `factor` times too large (all channels).
- `clock_drift`: the meter clock gains `seconds_per_day` (negative: loses) while the window lasts;
  records are stamped with the meter's clock, so enough drift moves a record to a neighbouring slot.
- `clock_reset`: at `at` the meter clock jumps to `to` and runs on from there until `synced_at`
  (the RTU's clock sync) or until the clock register is written; records made meanwhile carry the
  wrong time and the first record after the sync has the clock-adjusted bit.
- `outage`: power lost (last gasp event at start, power-up event at end). Intervals wholly
  inside are missing; the partial ones hold the energy of the powered part and the outage bit.
- `phase_loss`: the supply loses one phase (a blown fuse, a broken conductor upstream): that
  phase's voltage *and* current are 0 and energy falls by that phase's third. The meter logs
  phase loss / phase restored (detail `L<n>`). Because no current flows on the dead phase this is
  not "energy with a phase at zero voltage": the cloud sees undervoltage (0 V on the phase) and
  voltage unbalance from the instantaneous values, and the phase-loss event.
- `voltage_sag` / `voltage_swell`: one phase's voltage is `pu` x the nominal voltage (sag:
  0 < pu < 1, swell: 1 < pu <= 2) - a steady-state excursion a regulator or a transformer tap
  fault causes, the case PRODIST Modulo 8 judges against the 0.93-1.05 pu band. Only the voltage
  changes: the load model has no voltage dependence, so currents, power and the recorded energy
  stay as they were. The nominal is the tenant's `nominal_voltage_v` (the simulators pass it);
  without one, the mean of the meter's healthy phase voltages.
- `voltage_link_open`: the meter's voltage link (potential link) of one phase is opened - the
  classic tamper where the load keeps drawing current through the meter but the meter no longer
  sees that phase's voltage, so that phase's energy goes unregistered: the phase shows 0 V while
  its current flows on, instantaneous P and Q and the recorded energy fall by the phase's third.
  The meter cannot tell a missing voltage from a missing phase, so it logs phase loss / restored
  like `phase_loss`. This is the fault behind "energy with a phase at zero voltage".
- `bypass`: the meter's energy registration is defeated while its current sensing still sees the
  load (a tampered metering element, a shunt past the measuring path): currents and voltages read
  as usual but P, Q and power factor read 0 / 0 / 1, the intervals record no energy (all four
  channels, for the bypassed part of an interval) and so the energy registers stand still. This
  is "current without metered energy". (A jumper that takes the current around the meter
  entirely leaves the meter seeing no current at all; only the consumption drop shows it.)
- `reverse_energy`: the energy flows the other way (CT reversed, or generation): active import is
  recorded as active export and the reactive quadrants swap; instantaneous P and Q turn negative.
- `tamper`: a `cover_open` or `magnetic` event at `at` (and its clearing at `end`, if given).
- `relay_open`: the supply is disconnected: no consumption, relay register 0, events at both ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hemera.domain.errors import HemeraError
from hemera.domain.readings import METER_FLAG_CLOCK_ADJUSTED, METER_FLAG_POWER_OUTAGE
from hemera_agent.simulators.profile import Instantaneous, IntervalEnergy

SCENARIO_SCHEMA: Literal["hemera.scenario/1"] = "hemera.scenario/1"
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)


class InvalidScenario(HemeraError):
    reason = "invalid_scenario"


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Window(_Fault):
    """A fault active over [start, end); `end` None means until the end of the simulation."""

    start: AwareDatetime
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"{type(self).__name__}: end must be after start")
        return self

    def active(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How much of [start, end) the window covers."""
        last = end if self.end is None else min(end, self.end)
        return max(timedelta(0), last - max(start, self.start))


class MeterOff(_Window):
    kind: Literal["meter_off"] = "meter_off"


class CommLoss(_Window):
    kind: Literal["comm_loss"] = "comm_loss"
    mode: Literal["gateway_exception", "silent"] = "gateway_exception"
    silence_seconds: float = Field(default=5.0, gt=0, le=60)


class Spike(_Fault):
    kind: Literal["spike"] = "spike"
    at: AwareDatetime
    factor: float = Field(gt=0)


class ClockDrift(_Window):
    kind: Literal["clock_drift"] = "clock_drift"
    seconds_per_day: float


class ClockReset(_Fault):
    kind: Literal["clock_reset"] = "clock_reset"
    at: AwareDatetime
    to: AwareDatetime = _EPOCH_2000
    synced_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ClockReset:
        if self.synced_at is not None and self.synced_at <= self.at:
            raise ValueError("clock_reset: synced_at must be after at")
        return self


class Outage(_Window):
    kind: Literal["outage"] = "outage"


class PhaseLoss(_Window):
    kind: Literal["phase_loss"] = "phase_loss"
    phase: Literal[1, 2, 3]


class ReverseEnergy(_Window):
    kind: Literal["reverse_energy"] = "reverse_energy"


class VoltageSag(_Window):
    """One phase's voltage at `pu` x nominal (below 1)."""

    kind: Literal["voltage_sag"] = "voltage_sag"
    phase: Literal[1, 2, 3]
    pu: float = Field(gt=0, lt=1)


class VoltageSwell(_Window):
    """One phase's voltage at `pu` x nominal (above 1)."""

    kind: Literal["voltage_swell"] = "voltage_swell"
    phase: Literal[1, 2, 3]
    pu: float = Field(gt=1, le=2)


class VoltageLinkOpen(_Window):
    """The meter's voltage link of one phase is open: 0 V seen there, the current flows on."""

    kind: Literal["voltage_link_open"] = "voltage_link_open"
    phase: Literal[1, 2, 3]


class Bypass(_Window):
    """Current is measured, energy is not registered."""

    kind: Literal["bypass"] = "bypass"


class Tamper(_Fault):
    kind: Literal["tamper"] = "tamper"
    type: Literal["cover_open", "magnetic"]
    at: AwareDatetime
    end: AwareDatetime | None = None


class RelayOpen(_Window):
    kind: Literal["relay_open"] = "relay_open"


Fault = Annotated[
    MeterOff
    | CommLoss
    | Spike
    | ClockDrift
    | ClockReset
    | Outage
    | PhaseLoss
    | ReverseEnergy
    | Tamper
    | RelayOpen
    | VoltageSag
    | VoltageSwell
    | VoltageLinkOpen
    | Bypass,
    Field(discriminator="kind"),
]


class MeterScenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    meter: str = Field(min_length=1)
    tenant: str | None = None
    faults: tuple[Fault, ...] = ()


class FleetSpec(BaseModel):
    """A generated fleet: `tenants` tenants, each with `rtus_per_tenant` RTUs of `meters_per_rtu` meters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: int = Field(default=1, ge=1, le=50)
    rtus_per_tenant: int = Field(default=1, ge=1, le=100)
    meters_per_rtu: int = Field(default=2, ge=1, le=247)
    models: tuple[str, ...] = Field(default=("hx300", "mx40"), min_length=1)
    countries: tuple[str, ...] = Field(default=("BR", "AU"), min_length=1)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["hemera.scenario/1"] = Field(default=SCENARIO_SCHEMA, alias="schema")
    start: AwareDatetime | None = None
    speed: float = Field(default=2000.0, gt=0)
    tenant_files: tuple[Path, ...] = ()
    fleet: FleetSpec | None = None
    meters: tuple[MeterScenario, ...] = ()

    def faults_for(self, tenant_id: str, meter_id: str) -> tuple[Fault, ...]:
        """Every fault the scenario gives this meter (entries without a tenant match any tenant)."""
        return tuple(
            fault
            for entry in self.meters
            if entry.meter == meter_id and entry.tenant in (None, tenant_id)
            for fault in entry.faults
        )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; tenant file paths become relative to the file."""
    try:
        document = yaml.safe_load(path.read_text())
        scenario = Scenario.model_validate(document)
    except OSError as exc:
        raise InvalidScenario(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidScenario(f"{path}: not YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidScenario(f"{path}: {problems}") from exc
    files = tuple(f if f.is_absolute() else path.parent / f for f in scenario.tenant_files)
    return scenario.model_copy(update={"tenant_files": files})


# --- pure fault functions -------------------------------------------------------------------------


_F = TypeVar("_F")


def _of(faults: Iterable[object], kind: type[_F]) -> list[_F]:
    return [f for f in faults if isinstance(f, kind)]


@dataclass(frozen=True, slots=True)
class RecordedInterval:
    """What the meter writes into its load-profile memory for one interval."""

    energy: IntervalEnergy
    flags: int


@dataclass(frozen=True, slots=True)
class ClockSync:
    """The clock register was written at true time `at` with the meter time `set_to`."""

    at: datetime
    set_to: datetime


def _fraction(windows: Iterable[_Window], start: datetime, end: datetime) -> float:
    covered = sum((w.overlap(start, end) for w in windows), timedelta(0))
    return min(1.0, covered / (end - start))


def recorded_interval(
    energy: IntervalEnergy, start: datetime, minutes: int, faults: Sequence[object]
) -> RecordedInterval | None:
    """The record the meter keeps for the (true) interval [start, start + minutes), or None (gap).

    `energy` is what the load consumed with a healthy meter and supply (`interval_energy`).
    """
    end = start + timedelta(minutes=minutes)
    if any(w.overlap(start, end) for w in _of(faults, MeterOff)):
        return None
    outage = _fraction(_of(faults, Outage), start, end)
    if outage >= 1.0:
        return None
    flags = 0
    previous = start - timedelta(minutes=minutes)
    if outage > 0 or any(w.overlap(previous, start) for w in _of(faults, MeterOff)):
        flags |= METER_FLAG_POWER_OUTAGE
    if any(
        r.synced_at is not None and start - timedelta(minutes=minutes) < r.synced_at <= start
        for r in _of(faults, ClockReset)
    ):
        flags |= METER_FLAG_CLOCK_ADJUSTED
    consuming = (1.0 - outage) * (1.0 - _fraction(_of(faults, RelayOpen), start, end))
    # A lost phase, or a phase whose voltage the meter no longer sees, takes its third with it.
    one_phase_out = (*_of(faults, PhaseLoss), *_of(faults, VoltageLinkOpen))
    consuming *= 1.0 - sum(w.overlap(start, end) / (end - start) for w in one_phase_out) / 3
    consuming *= 1.0 - _fraction(_of(faults, Bypass), start, end)
    reverse = _fraction(_of(faults, ReverseEnergy), start, end)
    spike = 1.0
    for s in _of(faults, Spike):
        if start <= s.at < end:
            spike *= s.factor
    scale = max(0.0, consuming) * spike

    def flow(forward: int, backward: int) -> tuple[int, int]:
        return (
            round((forward * (1 - reverse) + backward * reverse) * scale),
            round((backward * (1 - reverse) + forward * reverse) * scale),
        )

    a_imp, a_exp = flow(energy.active_import_wh, energy.active_export_wh)
    r_imp, r_exp = flow(energy.reactive_import_varh, energy.reactive_export_varh)
    return RecordedInterval(IntervalEnergy(a_imp, a_exp, r_imp, r_exp), flags)


def _drift(faults: Sequence[object], since: datetime, until: datetime) -> timedelta:
    """Clock error the drift windows accumulate between two true times."""
    seconds = 0.0
    for d in _of(faults, ClockDrift):
        seconds += d.overlap(since, until).total_seconds() * d.seconds_per_day / 86400
    return timedelta(seconds=seconds)


def meter_clock(true_now: datetime, faults: Sequence[object], syncs: Sequence[ClockSync] = ()) -> datetime:
    """The time the meter's own clock shows at true time `true_now`.

    The clock was last *set* at an anchor - a reset, the reset's scheduled sync, or a write of the
    clock register - and runs (with any drift) from there.
    """
    anchor_true = datetime.min.replace(tzinfo=UTC)
    anchor_meter = anchor_true
    for reset in _of(faults, ClockReset):
        if reset.at <= true_now and reset.at > anchor_true:
            anchor_true, anchor_meter = reset.at, reset.to
        if reset.synced_at is not None and reset.synced_at <= true_now and reset.synced_at > anchor_true:
            anchor_true, anchor_meter = reset.synced_at, reset.synced_at
    for sync in syncs:
        if sync.at <= true_now and sync.at >= anchor_true:
            anchor_true, anchor_meter = sync.at, sync.set_to
    if anchor_true == datetime.min.replace(tzinfo=UTC):
        return true_now + _drift(faults, true_now - timedelta(days=36500), true_now)
    return anchor_meter + (true_now - anchor_true) + _drift(faults, anchor_true, true_now)


CommState = Literal["answering", "gateway_exception", "silent"]


def comm_state(true_now: datetime, faults: Sequence[object]) -> tuple[CommState, float]:
    """Whether the meter answers at `true_now`, and how long a silent meter keeps the client waiting.

    An unpowered meter (meter_off, outage) answers nothing either; the RTU's gateway reports it.
    """
    for loss in _of(faults, CommLoss):
        if loss.active(true_now):
            return loss.mode, loss.silence_seconds
    if any(w.active(true_now) for w in (*_of(faults, MeterOff), *_of(faults, Outage))):
        return "gateway_exception", 0.0
    return "answering", 0.0


def relay_connected(true_now: datetime, faults: Sequence[object]) -> bool:
    return not any(w.active(true_now) for w in _of(faults, RelayOpen))


def faulted_instantaneous(
    values: Instantaneous,
    true_now: datetime,
    faults: Sequence[object],
    *,
    nominal_v: float | None = None,
) -> Instantaneous:
    """Instantaneous values as the meter measures them under the faults active at `true_now`.

    `nominal_v` (phase to neutral, V) is what a voltage sag/swell's `pu` multiplies; None: the
    mean of the healthy phase voltages in `values`.
    """
    if any(w.active(true_now) for w in _of(faults, Outage)):
        return Instantaneous((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 0.0, 1.0, 0.0)
    voltages = list(values.voltage_v)
    currents = list(values.current_a)
    power, reactive, pf = values.active_power_w, values.reactive_power_var, values.power_factor
    reference = nominal_v if nominal_v is not None else sum(values.voltage_v) / 3
    excursions: list[VoltageSag | VoltageSwell] = [*_of(faults, VoltageSag), *_of(faults, VoltageSwell)]
    for excursion in excursions:
        if excursion.active(true_now):
            voltages[excursion.phase - 1] = round(reference * excursion.pu, 1)
    if not relay_connected(true_now, faults):
        currents, power, reactive, pf = [0.0, 0.0, 0.0], 0.0, 0.0, 1.0
    for loss in _of(faults, PhaseLoss):
        if loss.active(true_now):
            voltages[loss.phase - 1] = 0.0
            power, reactive = round(power * 2 / 3), round(reactive * 2 / 3)
            currents[loss.phase - 1] = 0.0
    for link in _of(faults, VoltageLinkOpen):
        if link.active(true_now):
            # The current still flows through the meter; the meter multiplies it by 0 V.
            voltages[link.phase - 1] = 0.0
            power, reactive = round(power * 2 / 3), round(reactive * 2 / 3)
    if any(w.active(true_now) for w in _of(faults, Bypass)):
        power, reactive, pf = 0.0, 0.0, 1.0
    if any(w.active(true_now) for w in _of(faults, ReverseEnergy)):
        power, reactive, pf = -power, -reactive, -pf
    return replace(
        values,
        voltage_v=(voltages[0], voltages[1], voltages[2]),
        current_a=(currents[0], currents[1], currents[2]),
        active_power_w=power,
        reactive_power_var=reactive,
        power_factor=pf,
    )


class EventKind(StrEnum):
    """Meter events, named as the canonical event types the cloud will store."""

    POWER_DOWN = "power_down"  # last gasp
    POWER_UP = "power_up"
    CLOCK_RESET = "clock_reset"
    CLOCK_ADJUSTED = "clock_adjusted"
    PHASE_LOSS = "phase_loss"
    PHASE_RESTORED = "phase_restored"
    REVERSE_ENERGY = "reverse_energy"
    REVERSE_ENERGY_CLEARED = "reverse_energy_cleared"
    COVER_OPEN = "cover_open"
    COVER_CLOSED = "cover_closed"
    MAGNETIC_TAMPER = "magnetic_tamper"
    MAGNETIC_TAMPER_CLEARED = "magnetic_tamper_cleared"
    RELAY_DISCONNECTED = "relay_disconnected"
    RELAY_CONNECTED = "relay_connected"


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """One entry of the meter's event log: true time, the meter's own time stamp, kind, detail."""

    at: datetime
    meter_time: datetime
    kind: EventKind
    detail: str = ""


def _scheduled(faults: Sequence[object]) -> Iterable[tuple[datetime, EventKind, str]]:
    for o in _of(faults, Outage):
        yield o.start, EventKind.POWER_DOWN, "last gasp"
        if o.end is not None:
            yield o.end, EventKind.POWER_UP, ""
    for r in _of(faults, ClockReset):
        yield r.at, EventKind.CLOCK_RESET, f"clock set to {r.to.isoformat()}"
        if r.synced_at is not None:
            yield r.synced_at, EventKind.CLOCK_ADJUSTED, "clock synchronised"
    # An open voltage link looks like a missing phase voltage to the meter: it logs the same.
    phase_out: list[PhaseLoss | VoltageLinkOpen] = [*_of(faults, PhaseLoss), *_of(faults, VoltageLinkOpen)]
    for p in phase_out:
        yield p.start, EventKind.PHASE_LOSS, f"L{p.phase}"
        if p.end is not None:
            yield p.end, EventKind.PHASE_RESTORED, f"L{p.phase}"
    for w in _of(faults, ReverseEnergy):
        yield w.start, EventKind.REVERSE_ENERGY, ""
        if w.end is not None:
            yield w.end, EventKind.REVERSE_ENERGY_CLEARED, ""
    for t in _of(faults, Tamper):
        opened, cleared = (
            (EventKind.COVER_OPEN, EventKind.COVER_CLOSED)
            if t.type == "cover_open"
            else (EventKind.MAGNETIC_TAMPER, EventKind.MAGNETIC_TAMPER_CLEARED)
        )
        yield t.at, opened, ""
        if t.end is not None:
            yield t.end, cleared, ""
    for relay in _of(faults, RelayOpen):
        yield relay.start, EventKind.RELAY_DISCONNECTED, ""
        if relay.end is not None:
            yield relay.end, EventKind.RELAY_CONNECTED, ""


def meter_events(
    faults: Sequence[object], until: datetime, syncs: Sequence[ClockSync] = ()
) -> list[MeterEvent]:
    """The event log of a meter at true time `until`, oldest first, stamped by the meter's clock.

    A meter without power logs nothing but its last gasp, so events inside a meter-off window
    are lost (outage events are the meter's own and are kept).
    """
    offs = _of(faults, MeterOff)
    events = [
        MeterEvent(at, meter_clock(at, faults, syncs), kind, detail)
        for at, kind, detail in _scheduled(faults)
        if at <= until and not any(w.active(at) for w in offs)
    ]
    events.extend(
        MeterEvent(s.at, s.set_to, EventKind.CLOCK_ADJUSTED, "clock register written")
        for s in syncs
        if s.at <= until
    )
    return sorted(events, key=lambda e: (e.at, e.kind))


def fault_seed(*parts: str) -> int:
    """A stable small integer from names (fleet generation picks models and load classes with it)."""
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:4], "big")
