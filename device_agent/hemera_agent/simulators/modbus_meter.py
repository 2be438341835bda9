"""A Modbus TCP simulator of meters with a load-profile memory (one RTU, several unit ids).

Each simulated meter serves its model's register map (`hemera/domain/meter_models/<model>.yaml`),
read from the model, never re-typed here:

- a load-profile memory filled from `profile.interval_energy` for every interval from
  `history_start` up to the newest interval completed at `clock.now()`, minus the intervals that
  overlap a "meter off" window (no record at all: a gap, not zeros). The interval in which power
  came back carries the power-outage status bit, as real meters flag it;
- the cursor protocol: writing a u32 epoch to the cursor fills the window with the records at or
  after it, in time order; unused slots are zero (timestamp 0 = empty slot);
- the newest-interval register, the clock register (epoch of `clock.now()`), the profile period;
- energy registers equal to the sum of the recorded intervals since `history_start`, converted to
  the register's scaler (Wh → 0.01 kWh truncates), so register and profile agree;
- the event log of a map with an `event_log:` section, served with the same cursor protocol:
  writing a u32 epoch (meter clock) to its cursor fills its window with the first entries, in
  logging order, stamped at or after it (`MeterMemory.event_window`). Entries are the meter's
  scenario events (`ModbusMeterSimulator.events`) coded with the model's `event_codes:` table;
  a power-up carries the outage's length in seconds, a phase event its phase, a clock reset is
  stamped with the time before the jump (detail: the time it jumped to) and a clock adjustment
  with the new time (detail: the time before);
- the relay register (read/write; 0 opens the supply: no consumption until it is 1 again), the
  clock register (writing it sets the meter clock: a clock sync), and the instantaneous registers
  a map may define (`voltage_l1..3`, `current_l1..3`, `active_power`, `reactive_power`,
  `power_factor`, `frequency`, from `profile.instantaneous`) and a signed `net_active` total.
  Registers the map marks read-only answer writes with ILLEGAL ADDRESS; addresses the map does not
  define answer reads with ILLEGAL ADDRESS.

Faults (`scenario.py`: meter off, communication loss, spikes, clock drift/reset, outages, phase
loss, reverse energy, tamper, relay opened) are applied through that module's pure functions:
records are made per true interval, stamped with the meter's own clock; the meter keeps an event
log (`ModbusMeterSimulator.events(unit_id)`).

Run in-process (`ModbusMeterSimulator(...).start()`, a server thread with its own event loop) or
as a process: `python -m hemera_agent.simulators.modbus_meter --port P --tenant-file F --rtu ID`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# pymodbus 3.16 deprecates ModbusDeviceContext / ModbusSequentialDataBlock / ModbusServerContext
# (each logs a "removed in v4" warning on construction) and converts them internally into the
# SimDevice/SimData model below. We build SimDevice/SimData directly, deliberately: it is the model
# v4 keeps, so nothing warns and nothing has to be silenced, and its `action` hook is the only way
# in 3.16 to react to a request (the old block classes are copied into SimData, so overriding their
# setValues is never called) - and the cursor protocol must react to a write. Note the address
# base: ModbusSequentialDataBlock(address=1) stores at PDU address 0 (it subtracts 1), while
# SimData addresses are the 0-based PDU addresses the register map uses.
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hemera.domain.meter_events import EventType
from hemera.domain.modbus.model import EventCodeSpec, EventDetail, FieldSpec, ModbusMeterModel, load_model
from hemera.domain.modbus.registers import WIDTH, decode_value, encode_value
from hemera.domain.readings import METER_FLAG_CLOCK_ADJUSTED, Channel
from hemera.tenants import LoadClass, TenantDefinition, load_tenant_file
from hemera_agent.clock import Clock, SimClock, utc_now
from hemera_agent.simulators.profile import (
    Instantaneous,
    IntervalEnergy,
    instantaneous,
    interval_energy,
    meter_seed,
)
from hemera_agent.simulators.scenario import (
    ClockSync,
    EventKind,
    Fault,
    MeterEvent,
    MeterOff,
    Outage,
    RelayOpen,
    comm_state,
    faulted_instantaneous,
    load_scenario,
    meter_clock,
    meter_events,
    recorded_interval,
    relay_connected,
)

log = logging.getLogger("hemera_agent.simulator")

_WRITE_FUNCTIONS = frozenset({6, 16, 22, 23})
_ENERGY_FIELD: dict[Channel, str] = {
    Channel.ACTIVE_IMPORT: "active_import_wh",
    Channel.ACTIVE_EXPORT: "active_export_wh",
    Channel.REACTIVE_IMPORT: "reactive_import_varh",
    Channel.REACTIVE_EXPORT: "reactive_export_varh",
}

OffWindow = tuple[datetime, datetime]
# The scenario's event kinds are named as the canonical types, but for the relay's.
_EVENT_TYPE: dict[EventKind, EventType] = {
    **{kind: EventType(kind.value) for kind in EventKind if kind.value in {t.value for t in EventType}},
    EventKind.RELAY_DISCONNECTED: EventType.RELAY_OPEN,
    EventKind.RELAY_CONNECTED: EventType.RELAY_CLOSED,
}
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class SimulatedMeter:
    """One meter behind the RTU: its unit id, its load, its outages and its scenario faults.

    `country` (the tenant's) makes its public holidays run like Sundays; `off_windows` are
    shorthand for `meter_off` faults; `nominal_v` (the tenant's `nominal_voltage_v`, phase to
    neutral) is the voltage the phases read around (None: the country's supply voltage).
    """

    meter_id: str
    unit_id: int
    load_class: LoadClass
    peak_kw: float
    timezone: str
    seed: str
    model: str = "hx300"
    off_windows: tuple[OffWindow, ...] = field(default=())
    country: str | None = None
    faults: tuple[Fault, ...] = field(default=())
    nominal_v: float | None = None

    def all_faults(self) -> tuple[Fault, ...]:
        return (*(MeterOff(start=a, end=b) for a, b in self.off_windows), *self.faults)


def meters_from_tenant(
    tenant: TenantDefinition,
    rtu_id: str,
    off_windows: Mapping[str, Sequence[OffWindow]] | None = None,
    *,
    faults: Mapping[str, Sequence[Fault]] | None = None,
) -> list[SimulatedMeter]:
    """The Modbus meters a tenant file places behind `rtu_id`, ready to simulate."""
    off_windows = off_windows or {}
    faults = faults or {}
    return [
        SimulatedMeter(
            meter_id=m.id,
            unit_id=m.unit_id,
            load_class=tenant.customer(m.customer).load_class,
            peak_kw=m.peak_kw,
            timezone=tenant.timezone,
            seed=meter_seed(tenant.id, m.id),
            model=m.model,
            off_windows=tuple(off_windows.get(m.id, ())),
            country=tenant.country,
            faults=tuple(faults.get(m.id, ())),
            nominal_v=tenant.nominal_voltage_v,
        )
        for m in tenant.meters_of(rtu_id)
        if m.protocol == "modbus"
    ]


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _wh_to_raw(wh: int, spec: FieldSpec) -> int:
    """Whole Wh/varh to the raw integer of a field whose scaler is a power of ten of kWh/kvarh
    (a meter's counter truncates towards zero, also when signed)."""
    exponent = -3 - spec.scaler  # raw unit = 10**scaler kWh = 10**(scaler + 3) Wh
    if exponent >= 0:
        return wh * 10**exponent
    magnitude = abs(wh) // 10**-exponent
    return -magnitude if wh < 0 else magnitude


_INSTANT_FIELDS = {
    "voltage_l1": lambda i: i.voltage_v[0],
    "voltage_l2": lambda i: i.voltage_v[1],
    "voltage_l3": lambda i: i.voltage_v[2],
    "current_l1": lambda i: i.current_a[0],
    "current_l2": lambda i: i.current_a[1],
    "current_l3": lambda i: i.current_a[2],
    "active_power": lambda i: i.active_power_w,
    "reactive_power": lambda i: i.reactive_power_var,
    "power_factor": lambda i: i.power_factor,
    "frequency": lambda i: i.frequency_hz,
}


class MeterMemory:
    """The load-profile memory and registers of one simulated meter (pure; no I/O).

    Records are appended as the clock passes interval ends, so the memory only ever grows and the
    energy registers are running sums of what was recorded.
    """

    def __init__(self, meter: SimulatedMeter, model: ModbusMeterModel, history_start: datetime) -> None:
        self.meter = meter
        self.model = model
        self._lp = model.load_profile
        self._interval = timedelta(minutes=self._lp.interval_minutes)
        seconds = int(self._interval.total_seconds())
        self._seconds = seconds
        aligned = _epoch(history_start) // seconds * seconds
        self._next = datetime.fromtimestamp(aligned, UTC)
        self.epochs: list[int] = []
        self._records: list[list[int]] = []
        self.totals_wh: dict[Channel, int] = dict.fromkeys(_ENERGY_FIELD, 0)
        self._scenario_faults = meter.all_faults()
        self._relay_windows: list[RelayOpen] = []  # opened by writes of the relay register
        self.clock_syncs: list[ClockSync] = []  # writes of the clock register

    @property
    def faults(self) -> tuple[Fault, ...]:
        return (*self._scenario_faults, *self._relay_windows)

    def meter_time(self, now: datetime) -> datetime:
        """What the meter's own clock shows at true time `now`."""
        return meter_clock(now, self.faults, self.clock_syncs)

    def _stamp(self, start: datetime) -> int:
        """The interval start the meter writes: its own clock, to the nearest interval boundary."""
        epoch = self.meter_time(start).timestamp()
        return round(epoch / self._seconds) * self._seconds

    def advance(self, now: datetime) -> None:
        """Record every (true) interval that has ended by `now`."""
        while self._next + self._interval <= now:
            start = self._next
            self._next = start + self._interval
            energy = interval_energy(
                self.meter.seed,
                self.meter.load_class,
                self.meter.peak_kw,
                self.meter.timezone,
                start,
                self._lp.interval_minutes,
                country=self.meter.country,
            )
            recorded = recorded_interval(energy, start, self._lp.interval_minutes, self.faults)
            if recorded is None:
                continue
            stamp = self._stamp(start)
            flags = recorded.flags
            if any(start - self._interval < s.at <= start for s in self.clock_syncs):
                flags |= METER_FLAG_CLOCK_ADJUSTED
            position = bisect.bisect_left(self.epochs, stamp)
            if position < len(self.epochs) and self.epochs[position] == stamp:
                continue  # a drifting clock stamped two intervals alike: the meter keeps the first
            self.epochs.insert(position, stamp)
            self._records.insert(position, self._encode_record(stamp, recorded.energy, flags))
            for channel, name in _ENERGY_FIELD.items():
                self.totals_wh[channel] += getattr(recorded.energy, name)

    # --- commands the meter accepts over Modbus ---------------------------------------------------
    def command_relay(self, connect: bool, now: datetime) -> None:
        """A write of the relay register at true time `now`."""
        self.advance(now)
        open_window = next((w for w in self._relay_windows if w.end is None), None)
        if connect and open_window is not None:
            self._relay_windows[self._relay_windows.index(open_window)] = RelayOpen(
                start=open_window.start, end=max(now, open_window.start + timedelta(microseconds=1))
            )
        elif not connect and open_window is None and relay_connected(now, self.faults):
            self._relay_windows.append(RelayOpen(start=now))

    def set_clock(self, meter_epoch: int, now: datetime) -> None:
        """A write of the clock register at true time `now` (a clock sync)."""
        self.advance(now)
        self.clock_syncs.append(ClockSync(at=now, set_to=datetime.fromtimestamp(meter_epoch, UTC)))

    def events(self, now: datetime) -> list[MeterEvent]:
        """The meter's event log at true time `now`, oldest first."""
        return meter_events(self.faults, now, self.clock_syncs)

    def _event_code(self, kind: EventKind) -> tuple[int, EventCodeSpec] | None:
        """The model's code for a scenario event (a cover opening is the terminal cover's);
        None when the model logs no such event."""
        wanted = _EVENT_TYPE.get(kind)
        if wanted is None:
            return None
        found = sorted(
            ((spec.cover != "terminal", code), spec)
            for code, spec in self.model.event_codes.items()
            if spec.type is wanted
        )
        return (found[0][0][1], found[0][1]) if found else None

    def event_log(self, now: datetime) -> list[tuple[int, int, int]]:
        """(time stamp in meter-clock epoch seconds, code, detail) of every entry the meter has
        logged by true time `now`, in logging order."""
        entries: list[tuple[int, int, int]] = []
        for event in self.events(now):
            coded = self._event_code(event.kind)
            if coded is None:
                continue
            code, spec = coded
            # The clock an instant before the event, to the nearest second (not truncated to the
            # second before).
            before = round(self.meter_time(event.at - _JUST_BEFORE).timestamp())
            # A reset entry keeps the last good time (its detail is where the clock jumped to), so
            # a reader asking from that time on finds it; entries after it carry the wrong clock.
            stamp = before if spec.type is EventType.CLOCK_RESET else _epoch(event.meter_time)
            entries.append((stamp, code, self._event_detail(spec.detail, event, before)))
        return entries

    def _event_detail(self, kind: EventDetail, event: MeterEvent, clock_before: int) -> int:
        if kind == "duration_s":
            outage = next((o for o in self.faults if isinstance(o, Outage) and o.end == event.at), None)
            return 0 if outage is None else int((event.at - outage.start).total_seconds())
        if kind == "phase":
            return int(event.detail.removeprefix("L"))  # scenario.py writes "L<phase>"
        if kind == "clock_before":
            return clock_before
        if kind == "clock_after":
            return _epoch(event.meter_time)
        return 0

    def event_window(self, cursor_epoch: int, now: datetime) -> list[int]:
        """The registers of the event-log window for a cursor: the first entries stamped at or
        after it, in logging order, then empty slots."""
        log = self.model.event_log
        assert log is not None  # only maps with an event log serve one
        order = self.model.word_order
        registers: list[int] = []
        chosen = [e for e in self.event_log(now) if e[0] >= cursor_epoch][: log.records_per_window]
        for stamp, code, detail in chosen:
            record = [0] * log.record_size
            for spec, value in ((log.timestamp, stamp), (log.code, code), (log.detail, detail)):
                record[spec.offset : spec.offset + spec.width] = encode_value(value, spec.type, order)
            registers.extend(record)
        registers.extend([0] * (log.window_registers - len(registers)))
        return registers

    def _encode_record(self, stamp: int, energy: IntervalEnergy, flags: int) -> list[int]:
        order = self.model.word_order
        record = [0] * self._lp.record_size

        def put(spec: FieldSpec, value: int) -> None:
            record[spec.offset : spec.offset + spec.width] = encode_value(value, spec.type, order)

        put(self._lp.timestamp, stamp)
        for spec in self._lp.channels:
            assert spec.channel is not None  # LoadProfileSpec guarantees it
            put(spec, _wh_to_raw(getattr(energy, _ENERGY_FIELD[spec.channel]), spec))
        put(self._lp.status, flags)
        return record

    @property
    def newest_epoch(self) -> int:
        """Start of the newest recorded interval, 0 when the memory is empty."""
        return self.epochs[-1] if self.epochs else 0

    def window(self, cursor_epoch: int) -> list[int]:
        """The registers of the window for a cursor: records at/after it, then empty slots."""
        first = bisect.bisect_left(self.epochs, cursor_epoch)
        registers: list[int] = []
        for record in self._records[first : first + self._lp.records_per_window]:
            registers.extend(record)
        registers.extend([0] * (self._lp.window_registers - len(registers)))
        return registers

    def register_values(self, now: datetime) -> dict[int, list[int]]:
        """Address → registers of the live values (clock, period, newest, energy totals)."""
        order = self.model.word_order
        values: dict[int, list[int]] = {}
        regs = self.model.registers
        if "clock" in regs:
            values[regs["clock"].address] = encode_value(
                _epoch(self.meter_time(now)), regs["clock"].type, order
            )
        if "relay" in regs:
            connected = relay_connected(now, self.faults)
            values[regs["relay"].address] = encode_value(int(connected), regs["relay"].type, order)
        if "profile_period" in regs:
            spec = regs["profile_period"]
            values[spec.address] = encode_value(self._lp.interval_minutes, spec.type, order)
        values[self._lp.newest_address] = encode_value(self.newest_epoch, self._lp.timestamp.type, order)
        for channel, total in self.totals_wh.items():
            if channel.value in regs:
                spec = regs[channel.value]
                values[spec.address] = encode_value(_wh_to_raw(total, spec), spec.type, order)
        if "net_active" in regs:
            spec = regs["net_active"]
            net = self.totals_wh[Channel.ACTIVE_IMPORT] - self.totals_wh[Channel.ACTIVE_EXPORT]
            values[spec.address] = encode_value(_wh_to_raw(net, spec), spec.type, order)
        if any(name in regs for name in _INSTANT_FIELDS):
            measured = faulted_instantaneous(
                self.instantaneous(now), now, self.faults, nominal_v=self.meter.nominal_v
            )
            for name, pick in _INSTANT_FIELDS.items():
                if name in regs:
                    spec = regs[name]
                    raw = round(float(pick(measured)) * 10**-spec.scaler)
                    values[spec.address] = encode_value(raw, spec.type, order)
        return values

    def instantaneous(self, now: datetime) -> Instantaneous:
        """Healthy instantaneous values at true time `now` (before faults)."""
        return instantaneous(
            self.meter.seed,
            self.meter.load_class,
            self.meter.peak_kw,
            self.meter.timezone,
            now,
            self._lp.interval_minutes,
            country=self.meter.country,
            nominal_v=self.meter.nominal_v,
        )


@dataclass
class UnitStats:
    """Requests one unit id has served (tests use them to prove what was, or was not, re-read)."""

    requests: int = 0
    window_fills: int = 0
    window_reads: int = 0
    event_window_fills: int = 0
    unanswered: int = 0  # requests refused by a fault (meter off, outage, communication loss)


class _UnitHandler:
    """Binds a `MeterMemory` to pymodbus' SimDevice action hook."""

    def __init__(self, memory: MeterMemory, clock: Clock) -> None:
        self.memory = memory
        self.clock = clock
        self.stats = UnitStats()
        model = memory.model
        lp = model.load_profile
        self._cursor = lp.cursor_address
        self._window = lp.window_address
        self._window_len = lp.window_registers
        self._cursor_type = lp.timestamp.type
        regs = model.registers
        self._relay = regs["relay"].address if "relay" in regs else None
        self._clock = regs.get("clock")
        self._event_log = model.event_log

    def simdevice(self) -> SimDevice:
        model = self.memory.model
        lp = model.load_profile
        blocks = [
            SimData(
                spec.address,
                count=spec.width,
                values=1 if name == "relay" else 0,
                datatype=DataType.REGISTERS,
                readonly=spec.access == "r",
            )
            for name, spec in model.registers.items()
        ]
        blocks.append(SimData(lp.cursor_address, count=WIDTH[lp.timestamp.type], datatype=DataType.REGISTERS))
        blocks.append(
            SimData(
                lp.newest_address, count=WIDTH[lp.timestamp.type], datatype=DataType.REGISTERS, readonly=True
            )
        )
        blocks.append(
            SimData(lp.window_address, count=lp.window_registers, datatype=DataType.REGISTERS, readonly=True)
        )
        if (log := model.event_log) is not None:
            blocks.append(SimData(log.cursor_address, count=log.timestamp.width, datatype=DataType.REGISTERS))
            blocks.append(
                SimData(
                    log.window_address, count=log.window_registers, datatype=DataType.REGISTERS, readonly=True
                )
            )
        return SimDevice(self.memory.meter.unit_id, simdata=blocks, action=self.action)

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Runs before pymodbus answers a request; `registers` is the device memory (edit in place)."""
        self.stats.requests += 1
        now = self.clock.now()
        self.memory.advance(now)
        state, silence = comm_state(now, self.memory.faults)
        if state != "answering":
            self.stats.unanswered += 1
            if state == "silent":
                await asyncio.sleep(silence)  # the client's timeout fires first, as on a dead line
            return ExcCodes.GATEWAY_NO_RESPONSE
        writing = function_code in _WRITE_FUNCTIONS and set_values is not None
        if writing and self._relay is not None and address <= self._relay < address + count:
            self.memory.command_relay(bool(int((set_values or [])[self._relay - address])), now)
        clock = self._clock
        if writing and clock is not None and address == clock.address and count == clock.width:
            words = [int(v) for v in set_values or ()]
            self.memory.set_clock(int(decode_value(words, 0, clock.type, self.memory.model.word_order)), now)
        for reg_address, words in self.memory.register_values(now).items():
            base = reg_address - start_address
            registers[base : base + len(words)] = words
        cursor_width = WIDTH[self._cursor_type]
        if writing and address < self._cursor + cursor_width and address + count > self._cursor:
            if address != self._cursor or count != cursor_width:
                return ExcCodes.ILLEGAL_VALUE  # the cursor is one value, written whole
            words = [int(v) for v in set_values or ()]
            cursor = int(decode_value(words, 0, self._cursor_type, self.memory.model.word_order))
            base = self._window - start_address
            registers[base : base + self._window_len] = self.memory.window(cursor)
            self.stats.window_fills += 1
        elif not writing and address < self._window + self._window_len and address + count > self._window:
            self.stats.window_reads += 1
        if writing:
            return self._event_cursor_written(start_address, address, count, registers, set_values, now)
        return None

    def _event_cursor_written(
        self,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
        now: datetime,
    ) -> ExcCodes | None:
        """A write touching the event-log cursor fills the event window (like the profile's)."""
        log = self._event_log
        if log is None:
            return None
        width = log.timestamp.width
        if not (address < log.cursor_address + width and address + count > log.cursor_address):
            return None
        if address != log.cursor_address or count != width:
            return ExcCodes.ILLEGAL_VALUE  # the cursor is one value, written whole
        words = [int(v) for v in set_values or ()]
        cursor = int(decode_value(words, 0, log.timestamp.type, self.memory.model.word_order))
        base = log.window_address - start_address
        registers[base : base + log.window_registers] = self.memory.event_window(cursor, now)
        self.stats.event_window_fills += 1
        return None


class ModbusMeterSimulator:
    """One Modbus TCP server (an RTU's port) serving several meters as unit ids.

    `start()` binds `host:port` (port 0 picks a free one; read `.port`) and serves from a daemon
    thread with its own event loop; `stop()` closes it. Usable as a context manager.
    """

    def __init__(
        self,
        meters: Iterable[SimulatedMeter],
        *,
        clock: Clock,
        history_start: datetime,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._handlers: dict[int, _UnitHandler] = {}
        for meter in meters:
            if meter.unit_id in self._handlers:
                raise ValueError(f"unit id {meter.unit_id} is used by two meters")
            memory = MeterMemory(meter, load_model(meter.model), history_start)
            self._handlers[meter.unit_id] = _UnitHandler(memory, clock)
        if not self._handlers:
            raise ValueError("a simulator needs at least one meter")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    def stats(self, unit_id: int) -> UnitStats:
        return self._handlers[unit_id].stats

    def memory(self, unit_id: int) -> MeterMemory:
        return self._handlers[unit_id].memory

    def events(self, unit_id: int) -> list[MeterEvent]:
        """The event log of the meter at `unit_id` now (power down/up, tamper, relay, clock...)."""
        handler = self._handlers[unit_id]
        return handler.memory.events(handler.clock.now())

    def start(self, timeout: float = 10.0) -> ModbusMeterSimulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._thread = threading.Thread(target=self._run, name="modbus-meter-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("Modbus simulator did not start listening")
        if self._error is not None:
            raise RuntimeError(f"Modbus simulator failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ModbusMeterSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread must not die silently
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        devices = [handler.simdevice() for handler in self._handlers.values()]
        server = ModbusTcpServer(devices, address=(self.host, self._requested_port))
        await server.serve_forever(background=True)
        sockets = getattr(server.transport, "sockets", None) or ()
        self._port = sockets[0].getsockname()[1] if sockets else self._requested_port
        log.info(
            "modbus simulator listening host=%s port=%s units=%s",
            self.host,
            self._port,
            ",".join(str(u) for u in self._handlers),
        )
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.shutdown()


def _parse_off(text: str) -> tuple[str, OffWindow]:
    """`METER=START/END` with ISO-8601 UTC times."""
    try:
        meter, span = text.split("=", 1)
        start, end = (datetime.fromisoformat(p.strip()) for p in span.split("/", 1))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--off wants METER=START/END in ISO-8601, got {text!r}") from exc
    if start.tzinfo is None or end.tzinfo is None:
        raise argparse.ArgumentTypeError("--off times need a UTC offset, e.g. 2026-11-21T10:00Z")
    return meter, (start, end)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hemera_agent.simulators.modbus_meter",
        description="Serve the Modbus meters of one RTU of a tenant file.",
    )
    parser.add_argument("--tenant-file", type=Path, required=True)
    parser.add_argument("--rtu", required=True, help="RTU id in the tenant file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0 picks a free one)")
    parser.add_argument("--history-hours", type=float, default=24.0, help="load profile kept before now")
    parser.add_argument(
        "--history-start",
        type=datetime.fromisoformat,
        default=None,
        help="ISO-8601 time with offset where the load profile starts (instead of --history-hours)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1: start with the history already recorded; S>1: start empty at the history start and "
        "record S times faster than real time until caught up, then at real time",
    )
    parser.add_argument("--off", type=_parse_off, action="append", default=[], help="METER=START/END outage")
    parser.add_argument("--scenario", type=Path, default=None, help="scenario file with the meters' faults")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    tenant = load_tenant_file(args.tenant_file)
    off: dict[str, list[OffWindow]] = {}
    for meter_id, window in args.off:
        off.setdefault(meter_id, []).append(window)
    history_start = args.history_start or utc_now() - timedelta(hours=args.history_hours)
    if history_start.tzinfo is None:
        parser.error("--history-start needs a UTC offset")
    clock: Clock = SimClock(start=utc_now() if args.speed == 1 else history_start, speed=args.speed)
    faults = {}
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        faults = {m.id: scenario.faults_for(tenant.id, m.id) for m in tenant.meters}
    meters = meters_from_tenant(tenant, args.rtu, off, faults=faults)
    if not meters:
        parser.error(f"no Modbus meters behind RTU {args.rtu!r} in {args.tenant_file}")
    simulator = ModbusMeterSimulator(
        meters, clock=clock, history_start=history_start, host=args.host, port=args.port
    ).start()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(
        f"serving {len(meters)} meter(s) of {tenant.id}/{args.rtu} on {args.host}:{simulator.port}",
        flush=True,
    )
    stopped.wait()
    simulator.stop()


if __name__ == "__main__":
    main()
