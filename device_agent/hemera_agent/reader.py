"""Reading a meter's load profile over Modbus with the cursor protocol of its model.

The agent does not translate: it ships each window as the raw registers it read. It only decodes
the record timestamps, because the cursor protocol needs them to know where to continue
(see `LoadProfileSpec` in `hemera.domain.modbus.model`):

1. read `newest_address` - the start of the newest completed interval (0 = no data yet);
2. write the first wanted interval start to `cursor_address`;
3. read the window; records at or after the cursor come in time order, empty slots have
   timestamp 0. Continue after the last record until the newest interval is reached.

Intervals the meter never recorded (it was off) are simply not in any window: the agent leaves the
gap for the cloud's VEE to see, it never fills it.

A model with an event log (`EventLogSpec`) is read the same way (`LoadProfileReader.event_windows`):
write the meter-clock epoch of the oldest wanted entry to the log's cursor, read its window; a full
window may have more entries, so continue from its newest time stamp (the entries of that second
come again; the cloud keeps each event once).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pymodbus.exceptions import ModbusException

from hemera.domain.envelope import FrameKind, ModbusFrame
from hemera.domain.errors import HemeraError
from hemera.domain.modbus.model import ModbusMeterModel, RegisterGroup, RegisterSpec
from hemera.domain.modbus.registers import decode_value, encode_value

READ_HOLDING_REGISTERS: Literal[3] = 3


class MeterReadError(HemeraError):
    """The meter did not answer, or answered with a Modbus exception or an impossible window."""

    reason = "meter_read_failed"


class MeterAnsweredGarbage(MeterReadError):
    """The meter answered, but not as its model allows: an exception response, a block of the
    wrong size, records out of order. Worth its own RTU event: the link works, the meter does not."""

    reason = "meter_garbage"


class RegisterResponse(Protocol):
    registers: list[int]

    def isError(self) -> bool: ...  # pymodbus' name


# Modbus exception codes a gateway answers for a device behind it that does not answer (0x0A path
# unavailable, 0x0B target failed to respond): communication loss, not a meter talking nonsense.
GATEWAY_NO_RESPONSE = frozenset({0x0A, 0x0B})


def _refusal(meter_id: str, what: str, response: RegisterResponse) -> MeterReadError:
    code = getattr(response, "exception_code", None)
    if code in GATEWAY_NO_RESPONSE:
        return MeterReadError(f"meter {meter_id}: {what}: the gateway got no answer (exception {code:#04x})")
    return MeterAnsweredGarbage(f"meter {meter_id}: {what} answered {response}")


class ModbusClient(Protocol):
    """The part of pymodbus' async client the reader uses (so a test can stand in for it)."""

    async def read_holding_registers(
        self, address: int, *, count: int = 1, device_id: int = 1, no_response_expected: bool = False
    ) -> RegisterResponse: ...

    async def write_registers(
        self, address: int, values: list[int], *, device_id: int = 1, no_response_expected: bool = False
    ) -> RegisterResponse: ...


@dataclass(frozen=True, slots=True)
class ProfileWindow:
    """One window as read: the raw frame and the interval starts of the records it holds."""

    frame: ModbusFrame
    interval_starts: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class EventWindow:
    """One event-log window as read: the raw frame and the time stamps (meter clock) it holds."""

    frame: ModbusFrame
    stamps: tuple[datetime, ...]


# Windows one event read may take (a log that keeps answering full windows is cut off here; the
# next read continues from the newest entry shipped).
MAX_EVENT_WINDOWS = 16


@dataclass(frozen=True, slots=True)
class EventLogRead:
    """The windows of one event-log read; `cut_off` when it stopped at `MAX_EVENT_WINDOWS` on a
    full window (the log may hold more)."""

    windows: tuple[EventWindow, ...]
    cut_off: bool = False

    def next_since(self) -> datetime | None:
        """Where the next read starts (None: nothing was read). Past the newest entry's second;
        at that second after a cut-off, whose later entries may not have been read yet."""
        stamps = [stamp for w in self.windows for stamp in w.stamps]
        if not stamps:
            return None
        return max(stamps) if self.cut_off else max(stamps) + timedelta(seconds=1)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class LoadProfileReader:
    """Reads the load profile of one meter (one unit id) through a connected Modbus client."""

    def __init__(self, client: ModbusClient, meter_id: str, unit_id: int, model: ModbusMeterModel) -> None:
        self._client = client
        self.meter_id = meter_id
        self.unit_id = unit_id
        self.model = model
        self._lp = model.load_profile
        self.interval = timedelta(minutes=self._lp.interval_minutes)
        self.windows_read = 0

    async def _read(self, address: int, count: int) -> list[int]:
        try:
            response = await self._client.read_holding_registers(address, count=count, device_id=self.unit_id)
        except ModbusException as exc:
            raise MeterReadError(f"meter {self.meter_id}: read {address}+{count} failed: {exc}") from exc
        if response.isError():
            raise _refusal(self.meter_id, f"read {address}+{count}", response)
        registers = list(response.registers)
        if len(registers) != count:
            raise MeterAnsweredGarbage(
                f"meter {self.meter_id}: asked {count} registers at {address}, got {len(registers)}"
            )
        return registers

    async def _write(self, address: int, values: list[int]) -> None:
        try:
            response = await self._client.write_registers(address, values, device_id=self.unit_id)
        except ModbusException as exc:
            raise MeterReadError(f"meter {self.meter_id}: write {address} failed: {exc}") from exc
        if response.isError():
            raise _refusal(self.meter_id, f"write {address}", response)

    async def read_register(self, name: str) -> int | float:
        """A named register of the model's map (raw value, before the scaler)."""
        spec = self._register(name)
        registers = await self._read(spec.address, spec.width)
        return decode_value(registers, 0, spec.type, self.model.word_order)

    async def write_register(self, name: str, value: int) -> None:
        """Write a named register the map marks writable."""
        spec = self._register(name)
        if spec.access == "r":
            raise MeterReadError(f"meter {self.meter_id}: register {name} of {self.model.model} is read-only")
        await self._write(spec.address, encode_value(value, spec.type, self.model.word_order))

    async def read_group(self, group: RegisterGroup, kind: FrameKind) -> list[ModbusFrame]:
        """The registers of a map group (energy totals, instantaneous values) as raw frames, one
        per contiguous run of the map (`ModbusMeterModel.register_blocks`); [] if it has none."""
        frames: list[ModbusFrame] = []
        for address, count in self.model.register_blocks(group):
            registers = await self._read(address, count)
            frames.append(
                ModbusFrame(
                    kind=kind,
                    unit_id=self.unit_id,
                    function=READ_HOLDING_REGISTERS,
                    address=address,
                    count=count,
                    data=b"".join(r.to_bytes(2, "big") for r in registers).hex(),
                )
            )
        return frames

    def _register(self, name: str) -> RegisterSpec:
        try:
            return self.model.registers[name]
        except KeyError:
            raise MeterReadError(f"meter model {self.model.model} has no register {name!r}") from None

    async def newest_interval(self) -> datetime | None:
        """Start of the newest completed interval the meter holds, None if it holds none."""
        spec = self._lp.timestamp
        registers = await self._read(self._lp.newest_address, spec.width)
        epoch = int(decode_value(registers, 0, spec.type, self.model.word_order))
        return datetime.fromtimestamp(epoch, UTC) if epoch else None

    async def read_window(self, cursor: datetime) -> ProfileWindow:
        """Point the cursor at `cursor` and read one window."""
        order = self.model.word_order
        await self._write(
            self._lp.cursor_address, encode_value(_epoch(cursor), self._lp.timestamp.type, order)
        )
        registers = await self._read(self._lp.window_address, self._lp.window_registers)
        self.windows_read += 1
        starts: list[datetime] = []
        for base in range(0, len(registers), self._lp.record_size):
            epoch = int(
                decode_value(registers, base + self._lp.timestamp.offset, self._lp.timestamp.type, order)
            )
            if epoch:
                starts.append(datetime.fromtimestamp(epoch, UTC))
        if any(later <= earlier for earlier, later in itertools.pairwise(starts)) or (
            starts and starts[0] < cursor
        ):
            raise MeterAnsweredGarbage(
                f"meter {self.meter_id}: window for {cursor.isoformat()} is out of order"
            )
        frame = ModbusFrame(
            kind=FrameKind.LOAD_PROFILE,
            unit_id=self.unit_id,
            function=READ_HOLDING_REGISTERS,
            address=self._lp.window_address,
            count=len(registers),
            data=b"".join(r.to_bytes(2, "big") for r in registers).hex(),
        )
        return ProfileWindow(frame, tuple(starts))

    async def windows_after(
        self, last_captured: datetime | None, backfill: timedelta
    ) -> AsyncIterator[ProfileWindow]:
        """Every window holding records after `last_captured`, up to the newest interval.

        On a first run (`last_captured` None) start `backfill` before the end of the newest
        interval. Windows without records are not yielded.
        """
        newest = await self.newest_interval()
        if newest is None:
            return
        cursor = last_captured + self.interval if last_captured else newest - backfill + self.interval
        while cursor <= newest:
            window = await self.read_window(cursor)
            if not window.interval_starts:
                return
            yield window
            cursor = window.interval_starts[-1] + self.interval

    async def read_event_window(self, cursor: datetime) -> EventWindow:
        """Point the event-log cursor at `cursor` (meter clock) and read one window."""
        log = self.model.event_log
        if log is None:
            raise MeterReadError(f"meter model {self.model.model} has no event log")
        order = self.model.word_order
        await self._write(log.cursor_address, encode_value(_epoch(cursor), log.timestamp.type, order))
        registers = await self._read(log.window_address, log.window_registers)
        stamps: list[datetime] = []
        empty = False
        for base in range(0, len(registers), log.record_size):
            epoch = int(decode_value(registers, base + log.timestamp.offset, log.timestamp.type, order))
            if not epoch:
                empty = True
                continue
            if empty or epoch < _epoch(cursor):
                raise MeterAnsweredGarbage(
                    f"meter {self.meter_id}: event window for {cursor.isoformat()} holds an entry "
                    "before the cursor or after an empty slot"
                )
            stamps.append(datetime.fromtimestamp(epoch, UTC))
        frame = ModbusFrame(
            kind=FrameKind.EVENTS,
            unit_id=self.unit_id,
            function=READ_HOLDING_REGISTERS,
            address=log.window_address,
            count=len(registers),
            data=b"".join(r.to_bytes(2, "big") for r in registers).hex(),
        )
        return EventWindow(frame, tuple(stamps))

    async def event_windows(self, since: datetime) -> EventLogRead:
        """The event-log windows holding the entries stamped at or after `since` (meter clock);
        none when there are none. Stops at `MAX_EVENT_WINDOWS`."""
        log = self.model.event_log
        if log is None:
            return EventLogRead(())
        windows: list[EventWindow] = []
        cursor = since.replace(microsecond=0)
        while True:
            window = await self.read_event_window(cursor)
            if not window.stamps:
                return EventLogRead(tuple(windows))
            windows.append(window)
            if len(window.stamps) < log.records_per_window:
                return EventLogRead(tuple(windows))
            if len(windows) == MAX_EVENT_WINDOWS:
                return EventLogRead(tuple(windows), cut_off=True)
            newest = max(window.stamps)
            # A full window of one second would come back the same: step past that second.
            cursor = newest if newest > cursor else cursor + timedelta(seconds=1)

    async def windows_between(self, first: datetime, last: datetime) -> AsyncIterator[ProfileWindow]:
        """Every window holding records whose start is in [first, last] (an on-demand re-read).

        The last window may hold records after `last`; the caller cuts them off.
        """
        newest = await self.newest_interval()
        if newest is None:
            return
        cursor = first
        end = min(last, newest)
        while cursor <= end:
            window = await self.read_window(cursor)
            if not window.interval_starts:
                return
            yield window
            cursor = window.interval_starts[-1] + self.interval
