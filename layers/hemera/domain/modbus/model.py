"""Meter models: a Modbus register map as data, and the decoding of load-profile and event-log
blocks with it.

A model file (`meter_models/<model>.yaml`) states where each quantity lives, its type, word
order, scaler and unit, and, for a meter that keeps an event log, where the log's window is and
what each of its event codes means (`event_log:`, `event_codes:`). Adding a meter model is adding
a file; the agent never changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hemera.domain.errors import MalformedFrame
from hemera.domain.meter_events import EventType, MeterEvent, Subject
from hemera.domain.meter_models import load_model_file
from hemera.domain.modbus.registers import WIDTH, RegisterType, WordOrder, decode_value, scaled
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit, utc_from_epoch

# Holding registers one "read holding registers" request may ask for.
MAX_READ_REGISTERS = 125


class FieldSpec(BaseModel):
    """One value inside a register block: offset in registers from the block's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int = Field(ge=0)
    type: RegisterType
    scaler: int = 0
    unit: str = ""
    channel: Channel | None = None

    @property
    def width(self) -> int:
        return WIDTH[self.type]


RegisterGroup = Literal["energy", "instantaneous", "control", "clock", "info"]


class RegisterSpec(FieldSpec):
    """A single register value at an absolute address (clock, energy registers).

    `group` says what the agent reads it as: `energy` registers (billing totals, read daily and
    on demand as `registers` frames), `instantaneous` values (voltage, current, power, read every
    few minutes), or `control`/`clock`/`info` registers it only touches for a command. A map
    without groups is still valid; the agent then reads no registers of it on a schedule.
    """

    address: int = Field(ge=0, le=0xFFFF)
    offset: int = 0
    access: Literal["r", "rw", "w"] = "r"
    description: str = ""
    group: RegisterGroup | None = None


class LoadProfileSpec(BaseModel):
    """How a meter exposes its interval memory.

    The client writes the UTC epoch second of the first wanted interval into `cursor_address`
    (u32); the meter then fills the window at `window_address` with up to `records_per_window`
    records of `record_size` registers, in time order, starting at the first record at or after
    the cursor. A record whose timestamp is 0 is an empty slot (no more data yet). The start of
    the newest completed interval can be read at `newest_address` (u32).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_minutes: int
    cursor_address: int
    newest_address: int
    window_address: int
    records_per_window: int = Field(ge=1)
    record_size: int = Field(ge=1)
    timestamp: FieldSpec
    status: FieldSpec
    channels: tuple[FieldSpec, ...]

    @model_validator(mode="after")
    def _fits(self) -> LoadProfileSpec:
        if self.records_per_window * self.record_size > MAX_READ_REGISTERS:
            raise ValueError("a window must fit one Modbus read (125 registers)")
        for spec in (self.timestamp, self.status, *self.channels):
            if spec.offset + spec.width > self.record_size:
                raise ValueError(
                    f"field at offset {spec.offset} overflows the {self.record_size}-register record"
                )
        if any(c.channel is None for c in self.channels):
            raise ValueError("every load-profile channel names its canonical channel")
        return self

    @property
    def window_registers(self) -> int:
        return self.records_per_window * self.record_size


_UNSIGNED = frozenset({RegisterType.U16, RegisterType.U32})


class EventLogSpec(BaseModel):
    """How a meter exposes its event log, the load profile's cursor protocol applied to events.

    The client writes an epoch second of the meter's clock into `cursor_address` (u32); the meter
    then fills the window at `window_address` with the first `records_per_window` entries, in the
    order it logged them, whose time stamp is at or after the cursor. A record is a time stamp
    (u32, meter clock, UTC epoch seconds), an event code (`event_codes` says what it means) and
    a detail value whose meaning the code states (a phase, a duration, a clock time; 0 when the
    code has none). A record whose time stamp is 0 is an empty slot: the log holds no more entries
    at or after the cursor. A full window means there may be more: continue from its newest stamp.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor_address: int = Field(ge=0, le=0xFFFF)
    window_address: int = Field(ge=0, le=0xFFFF)
    records_per_window: int = Field(ge=1)
    record_size: int = Field(ge=1)
    timestamp: FieldSpec
    code: FieldSpec
    detail: FieldSpec

    @model_validator(mode="after")
    def _fits(self) -> EventLogSpec:
        if self.records_per_window * self.record_size > MAX_READ_REGISTERS:
            raise ValueError("an event-log window must fit one Modbus read (125 registers)")
        if self.timestamp.type is not RegisterType.U32:
            raise ValueError("an event time stamp is a u32 epoch second")
        if self.code.type not in _UNSIGNED or self.detail.type not in _UNSIGNED:
            raise ValueError("event code and detail are unsigned (u16 or u32)")
        used: set[int] = set()
        for spec in (self.timestamp, self.code, self.detail):
            cells = set(range(spec.offset, spec.offset + spec.width))
            if spec.offset + spec.width > self.record_size:
                raise ValueError(
                    f"field at offset {spec.offset} overflows the {self.record_size}-register record"
                )
            if cells & used:
                raise ValueError(f"event-record fields overlap at offset {spec.offset}")
            used |= cells
        if self.cursor_address + WIDTH[RegisterType.U32] > self.window_address and (
            self.window_address + self.window_registers > self.cursor_address
        ):
            raise ValueError("the event-log cursor overlaps its window")
        return self

    @property
    def window_registers(self) -> int:
        return self.records_per_window * self.record_size

    def blocks(self) -> list[tuple[int, int]]:
        """(address, count) of the cursor and the window."""
        return [(self.cursor_address, WIDTH[RegisterType.U32]), (self.window_address, self.window_registers)]


# What the `detail` value of an event record holds, by code:
# - none: nothing (0);
# - duration_s: seconds (a power-up: how long the supply was lost, as IDIS power-failure logs do);
# - phase: the phase, 1..3 (a phase lost or restored);
# - clock_before / clock_after: the other side of a clock jump, UTC epoch seconds (a record is
#   stamped with one clock time; the detail carries the time before an adjustment, or the time a
#   reset jumped to).
EventDetail = Literal["none", "duration_s", "phase", "clock_before", "clock_after"]
_DETAIL_TYPES: Mapping[EventDetail, frozenset[EventType]] = {
    "duration_s": frozenset({EventType.POWER_UP}),
    "phase": frozenset({EventType.PHASE_LOSS, EventType.PHASE_RESTORED}),
    "clock_before": frozenset({EventType.CLOCK_ADJUSTED, EventType.CLOCK_RESET}),
    "clock_after": frozenset({EventType.CLOCK_ADJUSTED, EventType.CLOCK_RESET}),
}
_COVER_TYPES = frozenset({EventType.COVER_OPEN, EventType.COVER_CLOSED})
# Meter event types a meter's own log may carry (the others are the RTU's).
_METER_TYPES = frozenset(EventType) - {
    EventType.RTU_BUFFER_OVERFLOW,
    EventType.RTU_LOW_SIGNAL,
    EventType.RTU_HIGH_TEMPERATURE,
    EventType.METER_READ_FAILED,
}


class EventCodeSpec(BaseModel):
    """What one event code of a Modbus meter means: its canonical type (None: a valid entry of no
    canonical type, such as "log cleared", skipped), what the record's detail value holds, and the
    cover a cover event is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType | None
    detail: EventDetail = "none"
    cover: Literal["terminal", "meter"] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> EventCodeSpec:
        if self.type is not None and self.type not in _METER_TYPES:
            raise ValueError(f"{self.type} is an RTU's event, not a meter's")
        if self.detail != "none" and self.type not in _DETAIL_TYPES[self.detail]:
            raise ValueError(f"a {self.detail} detail does not belong to a {self.type} event")
        if self.cover is not None and self.type not in _COVER_TYPES:
            raise ValueError("only cover events name a cover")
        return self


class ModbusMeterModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    manufacturer: str
    protocol: Literal["modbus"]
    description: str = ""
    word_order: WordOrder
    registers: dict[str, RegisterSpec]
    load_profile: LoadProfileSpec
    event_log: EventLogSpec | None = None
    event_codes: dict[int, EventCodeSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _event_log_complete(self) -> ModbusMeterModel:
        if (self.event_log is None) != (not self.event_codes):
            raise ValueError("an event log and its event_codes come together")
        if self.event_log is None:
            return self
        limit = 1 << (16 * self.event_log.code.width)
        if any(not 0 <= code < limit for code in self.event_codes):
            raise ValueError(f"event codes must fit the log's {self.event_log.code.type} code field")
        taken = [(s.address, s.width) for s in self.registers.values()]
        lp = self.load_profile
        taken += [
            (lp.cursor_address, lp.timestamp.width),
            (lp.newest_address, lp.timestamp.width),
            (lp.window_address, lp.window_registers),
        ]
        for address, count in self.event_log.blocks():
            if any(address < a + n and a < address + count for a, n in taken):
                raise ValueError(f"event-log block at {address} overlaps another register of the map")
        return self

    def register_blocks(self, group: RegisterGroup) -> list[tuple[int, int]]:
        """(address, count) of the register runs holding a group: one Modbus read each.

        Registers that touch (the next starts where the previous one ends) share a run, so a
        group costs as few requests as the map allows; a run never exceeds one read's limit of
        125 registers (Modbus application protocol V1.1b3, 6.3), and a gap always ends a run:
        a meter may answer an unmapped address with an exception.
        """
        specs = sorted((s for s in self.registers.values() if s.group == group), key=lambda s: s.address)
        blocks: list[tuple[int, int]] = []
        for spec in specs:
            if blocks:
                address, count = blocks[-1]
                if spec.address == address + count and count + spec.width <= MAX_READ_REGISTERS:
                    blocks[-1] = (address, count + spec.width)
                    continue
            blocks.append((spec.address, spec.width))
        return blocks


def decode_load_profile_window(
    model: ModbusMeterModel, meter_id: str, registers: list[int]
) -> list[IntervalReading]:
    """Decode one load-profile window into canonical interval readings (empty slots skipped)."""
    lp = model.load_profile
    if len(registers) % lp.record_size:
        raise MalformedFrame(
            f"load-profile block of {len(registers)} registers is not whole {lp.record_size}-register records"
        )
    readings: list[IntervalReading] = []
    for base in range(0, len(registers), lp.record_size):
        record = registers[base : base + lp.record_size]
        epoch = int(decode_value(record, lp.timestamp.offset, lp.timestamp.type, model.word_order))
        if epoch == 0:
            continue
        start = utc_from_epoch(epoch)
        flags = int(decode_value(record, lp.status.offset, lp.status.type, model.word_order))
        for spec in lp.channels:
            assert spec.channel is not None  # checked by LoadProfileSpec
            raw = decode_value(record, spec.offset, spec.type, model.word_order)
            readings.append(_reading(meter_id, spec, start, lp.interval_minutes, raw, flags))
    return readings


def _reading(
    meter_id: str, spec: FieldSpec, start: datetime, minutes: int, raw: int | float, flags: int
) -> IntervalReading:
    assert spec.channel is not None
    unit = CHANNEL_UNITS[spec.channel]
    if spec.unit and Unit(spec.unit) is not unit:
        raise MalformedFrame(f"map gives {spec.unit} for {spec.channel}, canonical unit is {unit}")
    return IntervalReading.decoded(
        f"record at {start.isoformat()}",
        meter_id=meter_id,
        channel=spec.channel,
        start=start,
        length_minutes=minutes,
        value=scaled(raw, spec.scaler),
        unit=unit,
        raw_value=int(raw) if isinstance(raw, int) else None,
        meter_flags=flags,
    )


def decode_event_window(
    model: ModbusMeterModel, meter_id: str, device_id: str, registers: list[int]
) -> list[MeterEvent]:
    """Decode one event-log window into canonical meter events, in the order the meter logged
    them (empty slots end the window; entries of a code of no canonical type are skipped).

    `MalformedFrame` for a model without an event log, a block that is not whole records, an
    entry after an empty slot, a code the model's table does not list (Modbus registers carry no
    type: an unknown code means a garbled or misaligned window), or a detail out of its range.
    """
    log = model.event_log
    if log is None:
        raise MalformedFrame(f"meter model {model.model} has no event log")
    if not registers or len(registers) % log.record_size:
        raise MalformedFrame(
            f"event-log block of {len(registers)} registers is not whole {log.record_size}-register records"
        )
    order = model.word_order
    events: list[MeterEvent] = []
    empty_seen = False
    for index, base in enumerate(range(0, len(registers), log.record_size)):
        record = registers[base : base + log.record_size]
        stamp = int(decode_value(record, log.timestamp.offset, log.timestamp.type, order))
        if stamp == 0:
            empty_seen = True
            continue
        if empty_seen:
            raise MalformedFrame(f"event-log record {index} follows an empty slot")
        code = int(decode_value(record, log.code.offset, log.code.type, order))
        meaning = model.event_codes.get(code)
        if meaning is None:
            raise MalformedFrame(
                f"event-log record {index}: code {code} is not in model {model.model}'s table"
            )
        if meaning.type is None:
            continue
        value = int(decode_value(record, log.detail.offset, log.detail.type, order))
        at = utc_from_epoch(stamp)
        detail = _event_detail(meaning, value, index)
        events.append(
            MeterEvent(Subject.METER, meter_id, device_id, meaning.type, at, code=code, detail=detail)
        )
    return events


def _event_detail(meaning: EventCodeSpec, value: int, index: int) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if meaning.cover is not None:
        detail["cover"] = meaning.cover
    if meaning.detail == "duration_s":
        detail["duration_s"] = value
    elif meaning.detail == "phase":
        if value not in (1, 2, 3):
            raise MalformedFrame(f"event-log record {index}: phase {value} is not 1, 2 or 3")
        detail["phase"] = value
    elif meaning.detail in ("clock_before", "clock_after") and value:  # 0: the meter did not know
        detail[meaning.detail] = utc_from_epoch(value).isoformat()
    return detail


@cache
def load_model(model: str) -> ModbusMeterModel:
    """The register map of a meter model shipped with the platform; `UnknownMeterModel` otherwise."""
    return load_model_file(model, ModbusMeterModel, "register map")
