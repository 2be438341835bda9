"""A DLMS/COSEM meter simulator on TCP (IEC 62056-47 wrapper), built on gurux-dlms's server.

One simulated meter per TCP port, logical-name referencing, server address 1, low-level security
(LLS): an association must present the meter's password (any client address is accepted; an
association without authentication or with a wrong password is refused with AARE
`authentication-failure`). Every connection gets its own `GXDLMSServer` (association state is
per connection); all of them read one `DlmsMeterState`.

Objects (OBIS, class, type, scaler/unit as the HD-500 model file states them):
- clock 0.0.1.0.0.255 (8): the simulated UTC time, deviation 0;
- energy totals 1.0.1.8.0 / 2.8.0 (Wh) and 3.8.0 / 4.8.0 (varh), register (3), long64-unsigned,
  scaler 0 - a 1 MW plant passes 2^32 Wh in six months, so 64 bits, as real C&I meters do;
  tariff registers 1.0.1.8.1 (T1 = ponta, 18:00-21:00 local on weekdays) and 1.0.1.8.2 (T2 = the
  rest), T1 + T2 = 1.0.1.8.0; all of them equal the sum of the load-profile intervals recorded
  since the history start (the meter was installed then);
- maximum demand 1.0.1.6.0 (extended register, 4): the highest 15-minute average demand in W
  since the history start, its capture time = the end of that interval;
- instantaneous values, from the newest completed interval: voltage L1-L3 1.0.32/52/72.7.0
  (V, scaler -1, long-unsigned), current L1-L3 1.0.31/51/71.7.0 (A, scaler -2,
  double-long-unsigned, balanced phases), power factor 1.0.13.7.0 (scaler -3, long),
  frequency 1.0.14.7.0 (Hz, scaler -2, long-unsigned); voltage carries deterministic noise; the
  scenario faults active now apply as on the Modbus meter (`scenario.faulted_instantaneous`: a
  lost phase reads 0 V / 0 A, reverse energy a negative power factor, an outage all zeros);
- load profile 1.0.99.1.0.255 (7): capture objects clock + 1.0.1.29.0 / 2.29.0 / 3.29.0 / 4.29.0
  (energy of the interval, Wh/varh scaler 0, double-long-unsigned), 15-min capture period. The
  clock column is the END of the interval (captured at 00:15 for 00:00-00:15), as most DLMS
  meters do. Readable whole, by range (selector 1: rows whose clock is within [from, to],
  inclusive) and by entry (selector 2). Values are `profile.interval_energy` of the interval as
  the meter records it under its scenario faults (`scenario.recorded_interval`, as on the Modbus
  meter: no row while the meter is off or without supply, the powered part of an interval an
  outage cuts, active energy recorded as export under reverse energy, a third less with a phase
  gone, nothing in a bypass); the registers count what the profile recorded;
- event logs (7) standard 0.0.99.98.0, fraud 0.0.99.98.1, power failure 1.0.99.97.0, power
  quality 0.0.99.98.4: capture objects clock + event code (0.0.96.11.x.255, unsigned), IDIS
  codes. A fixed timeline relative to the history start, shown once the clock has passed it:
  standard 255 "event log cleared" at the start; fraud 40/41 terminal cover removed/closed at
  +6 h / +6 h 05 min; power failure 1/2 power down/up at +12 h / +12 h 05 min (markers only: a
  meter without faults has no gap in its load profile); power quality nothing; remote disconnect/reconnect add 59/60 to the
  standard log. A meter given scenario `faults` (`scenario.py`: `outage`, `tamper`,
  `phase_loss`, `reverse_energy`) logs those instead of the fixed fraud and power-failure
  markers, stamped by its clock: 1/2 at an outage's start/end, 40/41 (cover) or 42/43 (strong
  magnetic field) at a tamper's start/end, 82/83/84 (missing voltage L1/L2/L3) and 85/86/87
  (voltage L1/L2/L3 normal) in the power quality log at a phase loss's start/end, and the
  HD-500's own codes 231/232 (reverse energy started/ended; IDIS has none) in the fraud log at a
  reverse-energy window's start/end;
- disconnect control 0.0.96.3.10.255 (70): output state, control state, control mode 1;
  methods 1 remote_disconnect and 2 remote_reconnect.

Run in-process (`DlmsMeterSimulator(...).start()`, `.port`, `.stop()`) or as a process:
`python -m hemera_agent.simulators.dlms_meter --port P --tenant-file F --meter ID [--scenario S]`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import signal
import socket
import socketserver
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gurux_dlms.enums import AccessMode, Authentication, DataType, ErrorCode, InterfaceType, MethodAccessMode
from gurux_dlms.enums.SourceDiagnostic import SourceDiagnostic
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSExtendedRegister,
    GXDLMSObject,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

from hemera.domain.dlms.axdr import Tag, array, decode_datetime, encode, encode_datetime, structure
from hemera.domain.errors import MalformedFrame
from hemera.domain.readings import Channel
from hemera.tenants import LoadClass, MeterDef, TenantDefinition, load_tenant_file
from hemera_agent.clock import Clock, SimClock, utc_now
from hemera_agent.simulators.gurux_shims import ServerReply, ShimmedServer, fill_association_object_list
from hemera_agent.simulators.profile import (
    Instantaneous,
    IntervalEnergy,
    interval_energy,
    meter_seed,
    nominal_supply,
)
from hemera_agent.simulators.scenario import (
    EventKind,
    Fault,
    faulted_instantaneous,
    load_scenario,
    meter_events,
    recorded_interval,
)

log = logging.getLogger("hemera_agent.simulator.dlms")

WRAPPER_HEADER = 8  # version, source wPort, destination wPort, length (2 octets each)
SERVER_ADDRESS = 1

# Blue Book unit enumeration.
UNIT_W, UNIT_WH, UNIT_VARH, UNIT_A, UNIT_V, UNIT_HZ, UNIT_NONE = 27, 30, 32, 33, 35, 44, 255

# IDIS event codes.
EVENT_POWER_DOWN, EVENT_POWER_UP = 1, 2
EVENT_COVER_REMOVED, EVENT_COVER_CLOSED = 40, 41
EVENT_MAGNETIC_FIELD, EVENT_MAGNETIC_FIELD_GONE = 42, 43
EVENT_REMOTE_DISCONNECT, EVENT_REMOTE_RECONNECT = 59, 60
EVENT_MISSING_VOLTAGE = (82, 83, 84)  # L1, L2, L3
EVENT_VOLTAGE_NORMAL = (85, 86, 87)
EVENT_LOG_CLEARED = 255
# The HD-500's own codes (meter_models/hd500.yaml `event_codes:`): IDIS has no reverse energy.
EVENT_REVERSE_ENERGY, EVENT_REVERSE_ENERGY_CLEARED = 231, 232

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
STANDARD_LOG, FRAUD_LOG, POWER_FAILURE_LOG = "0.0.99.98.0.255", "0.0.99.98.1.255", "1.0.99.97.0.255"
POWER_QUALITY_LOG = "0.0.99.98.4.255"
# Each log's event code object (IDIS numbers the power quality log's code 0.0.96.11.4).
EVENT_CODE_OBJECTS = {
    STANDARD_LOG: "0.0.96.11.0.255",
    FRAUD_LOG: "0.0.96.11.1.255",
    POWER_FAILURE_LOG: "0.0.96.11.2.255",
    POWER_QUALITY_LOG: "0.0.96.11.4.255",
}
_FAULT_LOGS = (FRAUD_LOG, POWER_FAILURE_LOG, POWER_QUALITY_LOG)
DISCONNECT_CONTROL = "0.0.96.3.10.255"
ENERGY_TOTALS = {
    Channel.ACTIVE_IMPORT: ("1.0.1.8.0.255", UNIT_WH),
    Channel.ACTIVE_EXPORT: ("1.0.2.8.0.255", UNIT_WH),
    Channel.REACTIVE_IMPORT: ("1.0.3.8.0.255", UNIT_VARH),
    Channel.REACTIVE_EXPORT: ("1.0.4.8.0.255", UNIT_VARH),
}
INTERVAL_CHANNELS = {
    Channel.ACTIVE_IMPORT: ("1.0.1.29.0.255", UNIT_WH),
    Channel.ACTIVE_EXPORT: ("1.0.2.29.0.255", UNIT_WH),
    Channel.REACTIVE_IMPORT: ("1.0.3.29.0.255", UNIT_VARH),
    Channel.REACTIVE_EXPORT: ("1.0.4.29.0.255", UNIT_VARH),
}
_ENERGY_FIELD = {
    Channel.ACTIVE_IMPORT: "active_import_wh",
    Channel.ACTIVE_EXPORT: "active_export_wh",
    Channel.REACTIVE_IMPORT: "reactive_import_varh",
    Channel.REACTIVE_EXPORT: "reactive_export_varh",
}
TARIFF_T1, TARIFF_T2 = "1.0.1.8.1.255", "1.0.1.8.2.255"
MAX_DEMAND = "1.0.1.6.0.255"
VOLTAGE = ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")
CURRENT = ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255")
POWER_FACTOR = "1.0.13.7.0.255"
FREQUENCY = "1.0.14.7.0.255"
_PEAK_HOURS = (18, 21)  # T1 (ponta) on weekdays, local time


@dataclass(frozen=True)
class DlmsMeter:
    """What the simulator needs to know about one DLMS meter."""

    meter_id: str
    load_class: LoadClass
    peak_kw: float
    timezone: str
    seed: str
    password: bytes = b"00000000"
    interval_minutes: int = 15
    nominal_voltage: float = 220.0
    nominal_hz: float = 60.0
    # The tenant's country: its national holidays shape the load like Sundays (profile.py).
    country: str | None = None
    # Scenario faults whose events the logs carry and whose effect the instantaneous values show
    # (outage, tamper, phase loss, reverse energy); none: the fixed markers.
    faults: tuple[Fault, ...] = ()


@dataclass
class DlmsMeterState:
    """The meter's memory and live values (pure; no I/O). Records intervals as the clock passes
    their end, so registers and the profile only ever grow and always agree."""

    meter: DlmsMeter
    history_start: datetime
    rows: list[tuple[datetime, IntervalEnergy]] = field(default_factory=list)
    totals: dict[Channel, int] = field(default_factory=lambda: dict.fromkeys(_ENERGY_FIELD, 0))
    tariff_wh: list[int] = field(default_factory=lambda: [0, 0])
    max_demand_w: int = 0
    max_demand_at: datetime | None = None
    connected: bool = True
    relay_events: list[tuple[datetime, int]] = field(default_factory=list)
    now: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        seconds = self.meter.interval_minutes * 60
        aligned = int(self.history_start.timestamp()) // seconds * seconds
        self.history_start = datetime.fromtimestamp(aligned, UTC)
        self._next = self.history_start
        self._period = timedelta(minutes=self.meter.interval_minutes)
        self._zone = ZoneInfo(self.meter.timezone)
        self.now = self.history_start

    def advance(self, now: datetime) -> None:
        """Record every interval that has ended by `now`."""
        self.now = max(self.now, now)
        while self._next + self._period <= now:
            start, end = self._next, self._next + self._period
            self._next = end
            m = self.meter
            healthy = interval_energy(
                m.seed, m.load_class, m.peak_kw, m.timezone, start, m.interval_minutes, country=m.country
            )
            # What the meter records under its scenario faults, as the Modbus meter does: a gap
            # while it is off or without supply, a partial interval around an outage, energy the
            # other way under reverse energy, a third less with a phase gone, nothing in a bypass.
            recorded = recorded_interval(healthy, start, m.interval_minutes, m.faults)
            if recorded is None:
                continue
            energy = recorded.energy
            self.rows.append((end, energy))
            for channel, name in _ENERGY_FIELD.items():
                self.totals[channel] += getattr(energy, name)
            local = start.astimezone(self._zone)
            peak = local.weekday() < 5 and _PEAK_HOURS[0] <= local.hour < _PEAK_HOURS[1]
            self.tariff_wh[0 if peak else 1] += energy.active_import_wh
            demand_w = energy.active_import_wh * 60 // m.interval_minutes
            if demand_w > self.max_demand_w:
                self.max_demand_w, self.max_demand_at = demand_w, end

    def events(self, log_obis: str) -> list[tuple[datetime, int]]:
        """The entries of an event log that the clock has reached, oldest first."""
        if self.meter.faults and log_obis in _FAULT_LOGS:
            return self._fault_events(log_obis)
        start = self.history_start
        timeline = {
            STANDARD_LOG: [(start, EVENT_LOG_CLEARED), *self.relay_events],
            FRAUD_LOG: [
                (start + timedelta(hours=6), EVENT_COVER_REMOVED),
                (start + timedelta(hours=6, minutes=5), EVENT_COVER_CLOSED),
            ],
            POWER_FAILURE_LOG: [
                (start + timedelta(hours=12), EVENT_POWER_DOWN),
                (start + timedelta(hours=12, minutes=5), EVENT_POWER_UP),
            ],
            POWER_QUALITY_LOG: [],
        }[log_obis]
        return sorted((at, code) for at, code in timeline if at <= self.now)

    def _fault_events(self, log_obis: str) -> list[tuple[datetime, int]]:
        """The scenario faults' entries of the fraud, power-failure or power quality log, by the
        meter's clock."""
        codes = {
            POWER_FAILURE_LOG: {EventKind.POWER_DOWN: EVENT_POWER_DOWN, EventKind.POWER_UP: EVENT_POWER_UP},
            FRAUD_LOG: {
                EventKind.COVER_OPEN: EVENT_COVER_REMOVED,
                EventKind.COVER_CLOSED: EVENT_COVER_CLOSED,
                EventKind.MAGNETIC_TAMPER: EVENT_MAGNETIC_FIELD,
                EventKind.MAGNETIC_TAMPER_CLEARED: EVENT_MAGNETIC_FIELD_GONE,
                EventKind.REVERSE_ENERGY: EVENT_REVERSE_ENERGY,
                EventKind.REVERSE_ENERGY_CLEARED: EVENT_REVERSE_ENERGY_CLEARED,
            },
            POWER_QUALITY_LOG: {},
        }[log_obis]
        entries = []
        for e in meter_events(self.meter.faults, self.now):
            if log_obis == POWER_QUALITY_LOG and e.kind in _PHASE_CODES:
                code = _PHASE_CODES[e.kind][_phase_index(e.detail)]
            elif e.kind in codes:
                code = codes[e.kind]
            else:
                continue
            entries.append((e.meter_time.replace(microsecond=0), code))
        return entries

    def instantaneous(self) -> dict[str, int]:
        """Raw (scaled) instantaneous values: the healthy meter's from the newest completed
        interval, under the scenario faults active now."""
        m = self.meter
        if self.rows:
            captured, energy = self.rows[-1]
        else:
            captured, energy = self.history_start, IntervalEnergy(0, 0, 0, 0)
        per_hour = 60 / m.interval_minutes
        p = energy.active_import_wh * per_hour
        q = (energy.reactive_import_varh - energy.reactive_export_varh) * per_hour
        pf = p / math.hypot(p, q) if p else 1.0
        voltages, currents = [], []
        for phase in range(3):
            digest = hashlib.sha256(f"{m.seed}|{int(captured.timestamp())}|L{phase + 1}".encode()).digest()
            volts = m.nominal_voltage * (1 + 0.02 * (int.from_bytes(digest[:4], "big") / 2**32 - 0.5))
            voltages.append(volts)
            currents.append(p / (3 * volts * pf) if p else 0.0)
        healthy = Instantaneous(
            voltage_v=(voltages[0], voltages[1], voltages[2]),
            current_a=(currents[0], currents[1], currents[2]),
            active_power_w=p,
            reactive_power_var=q,
            power_factor=pf,
            frequency_hz=m.nominal_hz,
        )
        measured = faulted_instantaneous(healthy, self.now, m.faults, nominal_v=m.nominal_voltage)
        values: dict[str, int] = {
            POWER_FACTOR: round(measured.power_factor * 1000),
            FREQUENCY: round(measured.frequency_hz * 100),
        }
        for phase, (v_obis, a_obis) in enumerate(zip(VOLTAGE, CURRENT, strict=True)):
            values[v_obis] = round(measured.voltage_v[phase] * 10)
            values[a_obis] = round(measured.current_a[phase] * 100)
        return values

    def operate_relay(self, connect: bool) -> None:
        if connect != self.connected:
            self.connected = connect
            self.relay_events.append(
                (self.now, EVENT_REMOTE_RECONNECT if connect else EVENT_REMOTE_DISCONNECT)
            )


# Phase events and their IDIS codes per phase (L1, L2, L3) in the power quality log.
_PHASE_CODES = {EventKind.PHASE_LOSS: EVENT_MISSING_VOLTAGE, EventKind.PHASE_RESTORED: EVENT_VOLTAGE_NORMAL}


def _phase_index(detail: str) -> int:
    """0..2 from a scenario phase event's detail ("L1".."L3")."""
    if detail not in ("L1", "L2", "L3"):
        raise ValueError(f"a phase event names its phase L1-L3, not {detail!r}")
    return int(detail[1]) - 1


def _scaler_unit(scaler: int, unit: int) -> bytes:
    return structure([encode(Tag.INTEGER, scaler), encode(Tag.ENUM, unit)])


def _raw(e: Any, value: bytes) -> bytes:
    """Hand gurux an attribute value we encoded ourselves (A-XDR bytes, appended as they are)."""
    e.byteArray = True
    return value


class _LiveRegister(GXDLMSRegister):
    """Register (class 3) whose value is read from the meter state at each GET."""

    def __init__(self, ln: str, tag: Tag, scaler: int, unit: int, read: Callable[[], int]) -> None:
        super().__init__(ln)
        self._tag, self._scaler, self._unit, self._read = tag, scaler, unit, read
        self.setDataType(2, DataType(int(tag)))

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 2:
            return _raw(e, encode(self._tag, self._read()))
        if e.index == 3:
            return _raw(e, _scaler_unit(self._scaler, self._unit))
        return super().getValue(settings, e)


class _MaxDemand(GXDLMSExtendedRegister):
    """Extended register (class 4): value, scaler_unit, status, capture_time."""

    def __init__(self, state: DlmsMeterState) -> None:
        super().__init__(MAX_DEMAND)
        self._state = state
        self.setDataType(2, DataType.UINT32)

    def getValue(self, settings: Any, e: Any) -> Any:
        state = self._state
        if e.index == 2:
            return _raw(e, encode(Tag.DOUBLE_LONG_UNSIGNED, state.max_demand_w))
        if e.index == 3:
            return _raw(e, _scaler_unit(0, UNIT_W))
        if e.index == 4:
            return _raw(e, encode(Tag.UNSIGNED, 0))
        if e.index == 5:
            at = state.max_demand_at or state.history_start
            return _raw(e, encode(Tag.OCTET_STRING, encode_datetime(at)))
        return super().getValue(settings, e)


class _LiveClock(GXDLMSClock):
    def __init__(self, state: DlmsMeterState) -> None:
        super().__init__(CLOCK)
        self._state = state

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 2:
            return _raw(e, encode(Tag.OCTET_STRING, encode_datetime(self._state.now)))
        return super().getValue(settings, e)


class _LiveProfile(GXDLMSProfileGeneric):
    """ProfileGeneric (class 7) whose buffer is built from the meter state at each GET.

    We filter and encode the buffer ourselves: gurux 1.0.203's own range filter compares the
    start datetime with 0 (`tm >= start >= 0`) and fails on every range read.
    """

    def __init__(
        self,
        ln: str,
        capture: Sequence[GXDLMSObject],
        period_s: int,
        rows: Callable[[], list[tuple[datetime, list[bytes]]]],
    ) -> None:
        super().__init__(ln)
        for obj in capture:
            self.addCaptureObject(obj, 2, 0)
        self.capturePeriod = period_s
        self.profileEntries = 0xFFFF
        self._rows = rows

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 7:
            return len(self._rows())
        if e.index != 2:
            return super().getValue(settings, e)
        rows = self._rows()
        try:
            rows = self._select(rows, e.selector, e.parameters)
        except (MalformedFrame, TypeError, ValueError, IndexError):
            e.error = ErrorCode.OTHER_REASON
            return _raw(e, b"")
        return _raw(
            e,
            array([structure([encode(Tag.OCTET_STRING, encode_datetime(at)), *cells]) for at, cells in rows]),
        )

    @staticmethod
    def _select(
        rows: list[tuple[datetime, list[bytes]]], selector: int, params: Any
    ) -> list[tuple[datetime, list[bytes]]]:
        if not selector or params is None:
            return rows
        if selector == 1:  # range_descriptor: restricting object, from, to, selected columns
            low, high = decode_datetime(bytes(params[1])), decode_datetime(bytes(params[2]))
            return [row for row in rows if low <= row[0] <= high]
        if selector == 2:  # entry_descriptor: from_entry, to_entry (1-based; 0 = the newest)
            first, last = int(params[0]) or 1, int(params[1]) or len(rows)
            return rows[first - 1 : last]
        raise ValueError(f"selector {selector}")


class _LiveDisconnectControl(GXDLMSDisconnectControl):
    def __init__(self, state: DlmsMeterState) -> None:
        super().__init__(DISCONNECT_CONTROL)
        self._state = state

    def getValue(self, settings: Any, e: Any) -> Any:
        connected = self._state.connected
        if e.index == 2:
            return _raw(e, encode(Tag.BOOLEAN, connected))
        if e.index == 3:
            return _raw(e, encode(Tag.ENUM, 1 if connected else 0))
        if e.index == 4:
            return _raw(e, encode(Tag.ENUM, 1))
        return super().getValue(settings, e)

    def invoke(self, settings: Any, e: Any) -> Any:
        if e.index in (1, 2):
            self._state.operate_relay(connect=e.index == 2)
            return None
        e.error = ErrorCode.READ_WRITE_DENIED
        return None


def _total(state: DlmsMeterState, channel: Channel) -> int:
    return state.totals[channel]


def _tariff(state: DlmsMeterState, index: int) -> int:
    return state.tariff_wh[index]


def _instant(state: DlmsMeterState, obis: str) -> int:
    return state.instantaneous()[obis]


def _newest_interval(state: DlmsMeterState, channel: Channel) -> int:
    """The interval-value register (x.x.x.29.0): energy of the newest completed interval."""
    return int(getattr(state.rows[-1][1], _ENERGY_FIELD[channel])) if state.rows else 0


def build_objects(state: DlmsMeterState, password: bytes) -> list[GXDLMSObject]:
    """The COSEM objects of one association (fresh per connection, all reading `state`)."""
    objects: list[GXDLMSObject] = []
    association = GXDLMSAssociationLogicalName()
    association.authenticationMechanismName.mechanismId = Authentication.LOW
    association.secret = password
    clock = _LiveClock(state)
    objects += [association, clock]
    for channel, (obis, unit) in ENERGY_TOTALS.items():
        objects.append(_LiveRegister(obis, Tag.LONG64_UNSIGNED, 0, unit, partial(_total, state, channel)))
    objects.append(_LiveRegister(TARIFF_T1, Tag.LONG64_UNSIGNED, 0, UNIT_WH, partial(_tariff, state, 0)))
    objects.append(_LiveRegister(TARIFF_T2, Tag.LONG64_UNSIGNED, 0, UNIT_WH, partial(_tariff, state, 1)))
    objects.append(_MaxDemand(state))
    for obis in VOLTAGE:
        objects.append(_LiveRegister(obis, Tag.LONG_UNSIGNED, -1, UNIT_V, partial(_instant, state, obis)))
    for obis in CURRENT:
        objects.append(
            _LiveRegister(obis, Tag.DOUBLE_LONG_UNSIGNED, -2, UNIT_A, partial(_instant, state, obis))
        )
    objects.append(
        _LiveRegister(POWER_FACTOR, Tag.LONG, -3, UNIT_NONE, partial(_instant, state, POWER_FACTOR))
    )
    objects.append(
        _LiveRegister(FREQUENCY, Tag.LONG_UNSIGNED, -2, UNIT_HZ, partial(_instant, state, FREQUENCY))
    )

    interval_regs: list[GXDLMSObject] = [
        _LiveRegister(obis, Tag.DOUBLE_LONG_UNSIGNED, 0, unit, partial(_newest_interval, state, channel))
        for channel, (obis, unit) in INTERVAL_CHANNELS.items()
    ]
    objects += interval_regs

    def profile_rows() -> list[tuple[datetime, list[bytes]]]:
        return [
            (
                end,
                [
                    encode(Tag.DOUBLE_LONG_UNSIGNED, getattr(energy, _ENERGY_FIELD[c]))
                    for c in INTERVAL_CHANNELS
                ],
            )
            for end, energy in state.rows
        ]

    objects.append(
        _LiveProfile(LOAD_PROFILE, [clock, *interval_regs], state.meter.interval_minutes * 60, profile_rows)
    )
    for log_obis, code_obis in EVENT_CODE_OBJECTS.items():
        code = GXDLMSData(code_obis)
        code.setDataType(2, DataType.UINT8)
        code.value = 0

        def log_rows(o: str = log_obis) -> list[tuple[datetime, list[bytes]]]:
            return [(at, [encode(Tag.UNSIGNED, c)]) for at, c in state.events(o)]

        objects += [code, _LiveProfile(log_obis, [clock, code], 0, log_rows)]
    objects.append(_LiveDisconnectControl(state))
    fill_association_object_list(association, objects)
    return objects


class CosemServer(ShimmedServer):
    """One association's server: LN referencing, wrapper, LLS with the meter's password."""

    def __init__(self, state: DlmsMeterState, password: bytes) -> None:
        super().__init__(True, InterfaceType.WRAPPER)
        self._password = password
        for obj in build_objects(state, password):
            self.items.append(obj)
        self.initialize()

    def isTarget(self, server_address: int, client_address: int) -> bool:
        return bool(server_address == SERVER_ADDRESS)

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
        if authentication != Authentication.LOW or bytes(password or b"") != self._password:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg: Any) -> Any:
        return AccessMode.READ

    def onGetMethodAccess(self, arg: Any) -> Any:
        return MethodAccessMode.ACCESS

    def onFindObject(self, object_type: Any, sn: Any, ln: Any) -> Any:
        return None

    def onPreGet(self, args: Any) -> None:
        return None

    def onPostGet(self, args: Any) -> None:
        return None

    def onPreWrite(self, args: Any) -> None:
        return None

    def onPostWrite(self, args: Any) -> None:
        return None

    def onPreAction(self, args: Any) -> None:
        return None

    def onPostAction(self, args: Any) -> None:
        return None

    def onConnected(self, connection_info: Any) -> None:
        return None

    def onInvalidConnection(self, connection_info: Any) -> None:
        return None

    def onDisconnected(self, connection_info: Any) -> None:
        return None


@dataclass
class SimulatorStats:
    connections: int = 0
    requests: int = 0


class DlmsMeterSimulator:
    """One DLMS meter on one TCP port. `start()` binds (port 0 picks a free one; read `.port`)."""

    def __init__(
        self,
        meter: DlmsMeter,
        *,
        clock: Clock,
        history_start: datetime,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.meter = meter
        self.clock = clock
        self.state = DlmsMeterState(meter, history_start)
        self.stats = SimulatorStats()
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    def start(self) -> DlmsMeterSimulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        simulator = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                simulator._serve_connection(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer((self.host, self._requested_port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="dlms-meter-simulator", daemon=True)
        self._thread.start()
        log.info(
            "dlms simulator listening meter=%s host=%s port=%s", self.meter.meter_id, self.host, self.port
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None

    def __enter__(self) -> DlmsMeterSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def advance(self) -> None:
        with self._lock:
            self.state.advance(self.clock.now())

    def _serve_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self.stats.connections += 1
            server = CosemServer(self.state, self.meter.password)
        sock.settimeout(120)
        try:
            while True:
                frame = _read_wrapper_frame(sock)
                if frame is None:
                    return
                with self._lock:
                    self.stats.requests += 1
                    self.state.advance(self.clock.now())
                    reply = ServerReply(frame)
                    server.handleRequest(reply)
                if reply.reply:
                    sock.sendall(bytes(reply.reply))
        except (OSError, TimeoutError):
            return


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_wrapper_frame(sock: socket.socket) -> bytes | None:
    """One IEC 62056-47 wrapper frame (header + APDU), or None when the peer closed."""
    header = _recv_exact(sock, WRAPPER_HEADER)
    if header is None:
        return None
    body = _recv_exact(sock, int.from_bytes(header[6:8], "big"))
    return None if body is None else header + body


def meter_from_tenant(
    tenant_file: Path, meter_id: str, password: bytes, scenario: Path | None = None
) -> DlmsMeter:
    """A meter of a tenant file, with the faults a scenario file gives it (if any)."""
    tenant = load_tenant_file(tenant_file)
    meter = next((m for m in tenant.meters if m.id == meter_id), None)
    if meter is None:
        raise SystemExit(f"no meter {meter_id!r} in {tenant_file}")
    simulated = dlms_meter(tenant, meter, password)
    if scenario is None:
        return simulated
    return replace(simulated, faults=load_scenario(scenario).faults_for(tenant.id, meter_id))


def dlms_meter(tenant: TenantDefinition, meter: MeterDef, password: bytes) -> DlmsMeter:
    """The simulated DLMS meter for a meter of a tenant definition."""
    voltage, hertz = nominal_supply(tenant.country)
    # The tenant's network voltage when its file states one (what the alarm band is judged on).
    voltage = tenant.nominal_voltage_v or voltage
    return DlmsMeter(
        meter_id=meter.id,
        load_class=tenant.customer(meter.customer).load_class,
        peak_kw=meter.peak_kw,
        timezone=tenant.timezone,
        seed=meter_seed(tenant.id, meter.id),
        password=password,
        nominal_hz=hertz,
        nominal_voltage=voltage,
        country=tenant.country,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hemera_agent.simulators.dlms_meter",
        description="Serve one meter of a tenant file as a DLMS/COSEM meter (TCP wrapper, LLS).",
    )
    parser.add_argument("--tenant-file", type=Path, required=True)
    parser.add_argument("--meter", required=True, help="meter id in the tenant file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4059, help="TCP port (4059 is DLMS's; 0 picks one)")
    parser.add_argument("--password", default="00000000", help="LLS password")
    parser.add_argument("--history-hours", type=float, default=24.0)
    parser.add_argument("--history-start", type=datetime.fromisoformat, default=None)
    parser.add_argument("--scenario", type=Path, default=None, help="scenario file with the meter's faults")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1: start with the history already recorded; S>1: start at the history start and run "
        "S times faster than real time until caught up",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    history_start = args.history_start or utc_now() - timedelta(hours=args.history_hours)
    if history_start.tzinfo is None:
        parser.error("--history-start needs a UTC offset")
    clock: Clock = SimClock(start=utc_now() if args.speed == 1 else history_start, speed=args.speed)
    meter = meter_from_tenant(args.tenant_file, args.meter, args.password.encode(), args.scenario)
    simulator = DlmsMeterSimulator(
        meter, clock=clock, history_start=history_start, host=args.host, port=args.port
    )
    simulator.start()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"serving DLMS meter {meter.meter_id} on {args.host}:{simulator.port}", flush=True)
    stopped.wait()
    simulator.stop()


if __name__ == "__main__":
    main()
