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
- the relay register (read/write). Registers the map marks read-only answer writes with
  ILLEGAL ADDRESS; addresses the map does not define answer reads with ILLEGAL ADDRESS.

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

from hemera.domain.modbus.model import FieldSpec, ModbusMeterModel, load_model
from hemera.domain.modbus.registers import WIDTH, decode_value, encode_value
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, Channel
from hemera.tenants import LoadClass, TenantDefinition, load_tenant_file
from hemera_agent.clock import Clock, SimClock, utc_now
from hemera_agent.simulators.profile import IntervalEnergy, interval_energy, meter_seed

log = logging.getLogger("hemera_agent.simulator")

_WRITE_FUNCTIONS = frozenset({6, 16, 22, 23})
_ENERGY_FIELD: dict[Channel, str] = {
    Channel.ACTIVE_IMPORT: "active_import_wh",
    Channel.ACTIVE_EXPORT: "active_export_wh",
    Channel.REACTIVE_IMPORT: "reactive_import_varh",
    Channel.REACTIVE_EXPORT: "reactive_export_varh",
}

OffWindow = tuple[datetime, datetime]


@dataclass(frozen=True)
class SimulatedMeter:
    """One meter behind the RTU: its unit id, its load and its outages."""

    meter_id: str
    unit_id: int
    load_class: LoadClass
    peak_kw: float
    timezone: str
    seed: str
    model: str = "hx300"
    off_windows: tuple[OffWindow, ...] = field(default=())


def meters_from_tenant(
    tenant: TenantDefinition, rtu_id: str, off_windows: Mapping[str, Sequence[OffWindow]] | None = None
) -> list[SimulatedMeter]:
    """The Modbus meters a tenant file places behind `rtu_id`, ready to simulate."""
    off_windows = off_windows or {}
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
        )
        for m in tenant.meters_of(rtu_id)
        if m.protocol == "modbus"
    ]


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _wh_to_raw(wh: int, spec: FieldSpec) -> int:
    """Whole Wh/varh to the raw integer of a field whose scaler is a power of ten of kWh/kvarh."""
    exponent = -3 - spec.scaler  # raw unit = 10**scaler kWh = 10**(scaler + 3) Wh
    return wh * 10**exponent if exponent >= 0 else wh // 10**-exponent


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
        aligned = _epoch(history_start) // seconds * seconds
        self._next = datetime.fromtimestamp(aligned, UTC)
        self.epochs: list[int] = []
        self._records: list[list[int]] = []
        self.totals_wh: dict[Channel, int] = dict.fromkeys(_ENERGY_FIELD, 0)
        self._was_off = False

    def _is_off(self, start: datetime) -> bool:
        end = start + self._interval
        return any(start < off_end and end > off_start for off_start, off_end in self.meter.off_windows)

    def advance(self, now: datetime) -> None:
        """Record every interval that has ended by `now`."""
        while self._next + self._interval <= now:
            start = self._next
            self._next = start + self._interval
            if self._is_off(start):
                self._was_off = True
                continue
            energy = interval_energy(
                self.meter.seed,
                self.meter.load_class,
                self.meter.peak_kw,
                self.meter.timezone,
                start,
                self._lp.interval_minutes,
            )
            flags = METER_FLAG_POWER_OUTAGE if self._was_off else 0
            self._was_off = False
            self.epochs.append(_epoch(start))
            self._records.append(self._encode_record(start, energy, flags))
            for channel, name in _ENERGY_FIELD.items():
                self.totals_wh[channel] += getattr(energy, name)

    def _encode_record(self, start: datetime, energy: IntervalEnergy, flags: int) -> list[int]:
        order = self.model.word_order
        record = [0] * self._lp.record_size

        def put(spec: FieldSpec, value: int) -> None:
            record[spec.offset : spec.offset + spec.width] = encode_value(value, spec.type, order)

        put(self._lp.timestamp, _epoch(start))
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
            values[regs["clock"].address] = encode_value(_epoch(now), regs["clock"].type, order)
        if "profile_period" in regs:
            spec = regs["profile_period"]
            values[spec.address] = encode_value(self._lp.interval_minutes, spec.type, order)
        values[self._lp.newest_address] = encode_value(self.newest_epoch, self._lp.timestamp.type, order)
        for channel, total in self.totals_wh.items():
            if channel.value in regs:
                spec = regs[channel.value]
                values[spec.address] = encode_value(_wh_to_raw(total, spec), spec.type, order)
        return values


@dataclass
class UnitStats:
    """Requests one unit id has served (tests use them to prove what was, or was not, re-read)."""

    requests: int = 0
    window_fills: int = 0
    window_reads: int = 0


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
        for reg_address, words in self.memory.register_values(now).items():
            base = reg_address - start_address
            registers[base : base + len(words)] = words
        writing = function_code in _WRITE_FUNCTIONS and set_values is not None
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
    meters = meters_from_tenant(tenant, args.rtu, off)
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
